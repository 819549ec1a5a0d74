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
}
