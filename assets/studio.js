() => {
  // On a phone Gradio keeps the first tab in the strip and puts the rest behind "⋯", so the strip
  // read "Voice Design" whichever tab was open. The "⋯" button now names the open tab
  // (studio.css shows data-open-tab), marked like a selected tab.
  const sync = () => {
    for (const wrapper of document.querySelectorAll(".tab-wrapper")) {
      const menu = wrapper.querySelector(".overflow-menu > button");
      if (!menu) continue;
      const open = wrapper.querySelector(".overflow-dropdown button.selected");
      const name = open ? open.textContent.trim() : "";
      if (menu.dataset.openTab !== name) menu.dataset.openTab = name;
      if (wrapper.classList.contains("open-tab-in-menu") !== Boolean(name)) {
        wrapper.classList.toggle("open-tab-in-menu", Boolean(name));
      }
    }
  };
  new MutationObserver(sync).observe(document.body, {
    subtree: true,
    childList: true,
    attributes: true,
    attributeFilter: ["class", "aria-selected"],
  });
  sync();
  // An upload that is not audio: Gradio's own message was its raw MIME list ("Invalid file type
  // only audio/aac, audio/midi, … allowed"). The file is stopped before Gradio sees it and a
  // sentence is shown under the player instead (players marked with the class audio-upload).
  const AUDIO = /\.(wav|wave|mp3|flac|ogg|oga|opus|m4a|aac|webm|aif|aiff)$/i;
  const refuse = (event, files) => {
    const box = event.target.closest && event.target.closest(".audio-upload");
    if (!box || !files || !files.length) return;
    let note = box.parentElement.querySelector(":scope > .upload-refusal");
    const bad = Array.from(files).find(f => !(AUDIO.test(f.name) || (f.type || "").startsWith("audio/")));
    if (!bad) {
      if (note) note.remove();
      return;
    }
    event.stopImmediatePropagation();
    event.preventDefault();
    if (event.target.value !== undefined && event.type === "change") event.target.value = "";
    if (!note) {
      note = document.createElement("p");
      note.className = "inline-status upload-refusal";
      note.setAttribute("role", "alert");
      box.insertAdjacentElement("afterend", note);
    }
    note.textContent = `⚠️ “${bad.name}” is not an audio file. Upload a recording (WAV, MP3, FLAC, ` +
      "OGG or M4A), or record one with the microphone.";
  };
  document.addEventListener("change", e => e.target.type === "file" && refuse(e, e.target.files), true);
  document.addEventListener("drop", e => refuse(e, e.dataTransfer && e.dataTransfer.files), true);
  // Phone: the finished take sat about 1,000 px below "Done in 5 s" with nothing bringing it into
  // view (issue 23). When a tab's progress line turns to "Done in …" on a narrow screen, the take
  // player of that tab (<prefix>-audio, next to <prefix>-progress) is scrolled into view.
  const said = new WeakMap();
  const followDone = () => {
    for (const line of document.querySelectorAll(".take-progress[id$='-progress']")) {
      const text = line.textContent.trim();
      if (said.get(line) === text) continue;
      const before = said.get(line);
      said.set(line, text);
      if (before === undefined || !/^Done in /.test(text) || !matchMedia("(max-width: 640px)").matches) continue;
      const prefix = line.id.slice(0, -"-progress".length);
      // The take player is shown again just after the line says done: wait for it (up to ~4 s).
      const bring = tries => {
        const player = document.getElementById(`${prefix}-audio`);
        if (player && player.offsetParent) return player.scrollIntoView({ block: "start" });
        if (tries > 0) return setTimeout(() => bring(tries - 1), 200);
        const summary = document.getElementById(`${prefix}-summary`);
        if (summary) summary.scrollIntoView({ block: "start" });
      };
      bring(20);
    }
  };
  new MutationObserver(followDone).observe(document.body, { subtree: true, childList: true, characterData: true });
  // One take plays at a time (issue 23: variants played over each other): a player that starts
  // pauses every other one on the page.
  document.addEventListener("play", e => {
    if (!(e.target instanceof HTMLMediaElement)) return;
    for (const other of document.querySelectorAll("audio, video")) {
      if (other !== e.target && !other.paused) other.pause();
    }
  }, true);
  // Gradio's waveform players keep their <audio> out of the page: their Play buttons are paired.
  document.addEventListener("click", e => {
    const play = e.target.closest && e.target.closest("button.play-pause-button[aria-label=Play]");
    if (!play) return;
    for (const other of document.querySelectorAll("button.play-pause-button[aria-label=Pause]")) {
      if (other !== play) other.click();
    }
    for (const plain of document.querySelectorAll("audio")) if (!plain.paused) plain.pause();
  }, true);
}
