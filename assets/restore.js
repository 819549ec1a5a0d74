() => {
  // A reload lost the open tab and the text typed (issue 23): both are kept in this browser's
  // localStorage, and put back once the page has its tabs. Only text boxes the studio names
  // (an elem_id, not Gradio's "component-N") are kept, and a box is filled only while it is empty.
  const KEY = "qwen-tts-studio:page";
  let state;
  try {
    state = JSON.parse(localStorage.getItem(KEY) || "{}");
  } catch (error) {
    state = {};
  }
  state.text = state.text || {};
  const keep = () => {
    try {
      localStorage.setItem(KEY, JSON.stringify(state));
    } catch (error) {
      // private mode or full: nothing is kept, nothing breaks
    }
  };
  const named = box => {
    if (!box.matches || !box.matches("textarea, input[type=text]") || box.getAttribute("role") === "listbox") return null;
    const host = box.closest("[id]");
    return host && !/^component-\d+$/.test(host.id) ? host.id : null;
  };
  document.addEventListener("input", event => {
    const id = named(event.target);
    if (!id || !event.isTrusted) return;
    if (event.target.value) state.text[id] = event.target.value;
    else delete state.text[id];
    keep();
  }, true);
  // The open tab, by its name: a click on the strip or on the phone's "⋯" menu.
  document.addEventListener("click", event => {
    const tab = event.target.closest && event.target.closest("button[role=tab], .overflow-dropdown button");
    if (!tab || !event.isTrusted) return;
    state.tab = tab.textContent.trim();
    keep();
  }, true);

  const setValue = (box, value) => {
    const proto = box.tagName === "TEXTAREA" ? HTMLTextAreaElement.prototype : HTMLInputElement.prototype;
    Object.getOwnPropertyDescriptor(proto, "value").set.call(box, value);
    box.dispatchEvent(new Event("input", { bubbles: true }));
  };
  const openTab = name => {
    const strip = Array.from(document.querySelectorAll("button[role=tab]")).find(b => b.textContent.trim() === name);
    if (strip && strip.offsetParent !== null) {
      if (strip.getAttribute("aria-selected") !== "true") strip.click();
      return;
    }
    const menu = document.querySelector(".overflow-menu > button");
    if (!menu) return;
    menu.click();
    const item = Array.from(document.querySelectorAll(".overflow-dropdown button")).find(b => b.textContent.trim() === name);
    if (item) item.click();
  };
  const restoreText = () => {
    for (const [id, value] of Object.entries(state.text)) {
      const box = document.querySelector(`#${CSS.escape(id)} textarea, #${CSS.escape(id)} input[type=text]`);
      if (box && !box.value) setValue(box, value);
    }
  };
  // Gradio may lay its initial values over the boxes about a second after the tabs appear
  // (tests/e2e/browser.py fill), and a tab's boxes may appear only when it opens: the text is
  // put back once the tabs show, twice more after that, and after each tab change. A box the
  // user emptied is not refilled (its text was forgotten on that input).
  document.addEventListener("click", event => {
    if (event.target.closest && event.target.closest("button[role=tab], .overflow-dropdown button")) {
      for (const ms of [300, 1500]) setTimeout(restoreText, ms);
    }
  });
  const start = Date.now();
  const wait = setInterval(() => {
    if (!document.querySelector("button[role=tab]") && Date.now() - start < 30000) return;
    clearInterval(wait);
    if (state.tab) openTab(state.tab);
    for (const ms of [0, 1500, 3000]) setTimeout(restoreText, ms);
  }, 100);
}
