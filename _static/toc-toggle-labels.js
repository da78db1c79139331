// Names for the sidebar's open/close toggles, for screen readers.
// The theme (pydata-sphinx-theme, under sphinx-book-theme) puts each chapter's list of sections
// in a <details> whose <summary> holds only a chevron icon, so assistive technology announces a
// control with no name (axe-core rule "summary-name"). Each such toggle gets an aria-label made
// from the title of the entry it opens, e.g. "Sections of 1. The forward pass".
// Plain DOM code with no request: the site works offline, from file:// too.
(function () {
  function nameToggles() {
    document.querySelectorAll("li.has-children > details > summary").forEach(function (summary) {
      if (summary.textContent.trim() || summary.hasAttribute("aria-label")) {
        return; // already has a name (a caption inside it, or a label)
      }
      var link = summary.closest("li").querySelector(":scope > a");
      var title = link ? link.textContent.replace(/\s+/g, " ").trim() : "";
      summary.setAttribute("aria-label", title ? "Sections of " + title : "Show or hide sections");
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", nameToggles);
  } else {
    nameToggles();
  }
})();
