"""The Clone tab's trim waveform: the whole reference drawn once, with a draggable region that is
the Start/End trim.

Gradio's own gr.Audio trim (WaveSurfer's regions plugin behind the scissors button) replaces the
clip in place and never reports the region, so it cannot drive Start/End; the scissors stay off.
This is a gr.HTML component instead: the server sends the clip's peaks, its length and the trim
(``wave_value``); the page draws them on a canvas and lets the region be dragged (the edges, the
middle, or a new stretch). On release it writes the new start/end into the component's value and
fires its ``input`` event, which sets the Start/End fields on the server; typing in the fields sends
a new value back and the region follows (``watch``). Both ways go through the same handler, so the
undo stack and the preview see one kind of change.
"""

from __future__ import annotations

from typing import Any

import gradio as gr
import numpy as np

from core.audio.clip import Audio

PEAK_BINS = 480  # enough detail for a 1440 px wide column, small enough to send on every change

TEMPLATE = """
<div class="tw" data-testid="trim-wave">
  <canvas class="tw-canvas" aria-hidden="true"></canvas>
  <div class="tw-region" role="group" aria-label="Trim region: drag the edges or the middle">
    <span class="tw-handle tw-start" aria-label="Drag to set Start"></span>
    <span class="tw-handle tw-end" aria-label="Drag to set End"></span>
  </div>
  <div class="tw-label"></div>
  <div class="tw-empty">Upload or record a reference to trim it here.</div>
</div>
"""

CSS = """
.tw { position: relative; height: 96px; border-radius: 8px; background: var(--block-background-fill);
  border: 1px solid var(--border-color-primary); touch-action: none; user-select: none; cursor: crosshair; }
.tw-canvas { position: absolute; inset: 0; width: 100%; height: 100%; }
.tw-region { position: absolute; top: 0; bottom: 0; background: rgba(99, 102, 241, 0.18);
  border-left: 2px solid #6366f1; border-right: 2px solid #6366f1; cursor: grab; }
.tw-handle { position: absolute; top: 0; bottom: 0; width: 16px; cursor: ew-resize; }
.tw-handle::after { content: ""; position: absolute; top: 35%; bottom: 35%; left: 6px; width: 4px;
  border-radius: 2px; background: #6366f1; }
.tw-start { left: -9px; }
.tw-end { right: -9px; }
.tw-label { position: absolute; right: 6px; top: 4px; font-size: 12px; padding: 0 4px; border-radius: 4px;
  background: var(--background-fill-primary); color: var(--body-text-color); opacity: 0.9; }
.tw-empty { display: none; position: absolute; inset: 0; align-items: center; justify-content: center;
  color: var(--body-text-color-subdued); font-size: 14px; }
.tw.is-empty .tw-empty { display: flex; }
.tw.is-empty .tw-region, .tw.is-empty .tw-label { display: none; }
"""

# `element`, `props`, `trigger` and `watch` come from gr.HTML (see its js_on_load docs).
JS = """
const MIN = 0.1;  // shortest region, in seconds
let drag = null;   // {mode, t0, s0, e0} while the pointer is down
let live = null;   // [start, end] shown while dragging, before it is sent
const round = t => Math.round(t * 100) / 100;
const bounds = v => [v.start == null ? 0 : v.start, v.end == null ? v.duration : Math.min(v.end, v.duration)];
function draw() {
  const v = props.value;
  const box = element.querySelector('.tw');
  if (!box) return;
  const empty = !v || !v.duration;
  box.classList.toggle('is-empty', empty);
  const canvas = box.querySelector('canvas');
  const w = canvas.clientWidth, h = canvas.clientHeight, dpr = window.devicePixelRatio || 1;
  canvas.width = Math.max(1, Math.round(w * dpr));
  canvas.height = Math.max(1, Math.round(h * dpr));
  const g = canvas.getContext('2d');
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  if (empty) return;
  const [s, e] = live || bounds(v);
  const peaks = v.peaks || [];
  const step = w / Math.max(1, peaks.length);
  for (let i = 0; i < peaks.length; i++) {
    const t = (i + 0.5) / peaks.length * v.duration;
    g.fillStyle = t >= s && t <= e ? '#4f46e5' : '#a5b4fc';
    const bar = Math.max(1, peaks[i] * (h - 8));
    g.fillRect(i * step, (h - bar) / 2, Math.max(1, step - 1), bar);
  }
  const region = box.querySelector('.tw-region');
  region.style.left = (s / v.duration * 100) + '%';
  region.style.width = ((e - s) / v.duration * 100) + '%';
  box.querySelector('.tw-label').textContent =
    `${s.toFixed(2)}–${e.toFixed(2)} s (${(e - s).toFixed(2)} s of ${v.duration.toFixed(2)} s)`;
}
function at(event) {
  const rect = element.querySelector('.tw').getBoundingClientRect();
  const x = Math.min(Math.max(event.clientX - rect.left, 0), rect.width);
  return x / Math.max(1, rect.width) * props.value.duration;
}
element.addEventListener('pointerdown', event => {
  const v = props.value;
  if (!v || !v.duration || event.button > 0) return;
  const t = at(event);
  const [s, e] = bounds(v);
  const target = event.target;
  const mode = target.classList.contains('tw-start') ? 'start'
    : target.classList.contains('tw-end') ? 'end'
    // Inside a region that is already a trim: move it; on the untrimmed clip: draw a new one.
    : target.classList.contains('tw-region') && (s > 0 || e < v.duration) ? 'move' : 'new';
  drag = {mode, t0: t, s0: mode === 'new' ? t : s, e0: mode === 'new' ? t : e};
  live = [drag.s0, drag.e0];
  element.querySelector('.tw').setPointerCapture(event.pointerId);
  event.preventDefault();
});
element.addEventListener('pointermove', event => {
  if (!drag) return;
  const d = props.value.duration, t = at(event);
  let [s, e] = [drag.s0, drag.e0];
  if (drag.mode === 'start') s = Math.min(t, e - MIN);
  else if (drag.mode === 'end') e = Math.max(t, s + MIN);
  else if (drag.mode === 'move') {
    const shift = Math.min(Math.max(t - drag.t0, -s), d - e);
    s += shift; e += shift;
  } else { s = Math.min(drag.t0, t); e = Math.max(drag.t0, t); }
  live = [Math.max(0, s), Math.min(d, e)];
  draw();
});
const release = () => {
  if (!drag) return;
  const v = props.value;
  let [s, e] = live;
  drag = null;
  live = null;
  if (e - s < MIN) { draw(); return; }  // a click, not a drag: nothing to change
  s = round(s); e = round(e);
  props.value = {...v, start: s > 0 ? s : null, end: e < v.duration ? e : null};
  trigger('input');
  draw();
};
element.addEventListener('pointerup', release);
element.addEventListener('pointercancel', release);
watch('value', draw);
new ResizeObserver(draw).observe(element);
draw();
"""


def peaks(audio: Audio, bins: int = PEAK_BINS) -> list[float]:
    """The clip's loudest |sample| in each of ``bins`` stretches, scaled so the loudest is 1."""
    x = np.abs(audio.samples)
    if x.size == 0:
        return []
    bins = min(bins, x.size)
    edges = np.linspace(0, x.size, bins + 1).astype(int)
    values = np.maximum.reduceat(x, edges[:-1])
    top = float(values.max()) or 1.0
    return [round(float(v) / top, 3) for v in values]


def wave_value(audio: Audio | None, start_s: float | None, end_s: float | None) -> dict[str, Any] | None:
    if audio is None:
        return None
    return {
        "duration": round(audio.duration, 3),
        "peaks": peaks(audio),
        "start": start_s,
        "end": end_s,
    }


def trim_wave(elem_id: str) -> gr.HTML:
    return gr.HTML(
        None,
        html_template=TEMPLATE,
        css_template=CSS,
        js_on_load=JS,
        elem_id=elem_id,
        padding=False,
    )
