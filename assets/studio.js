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
}
