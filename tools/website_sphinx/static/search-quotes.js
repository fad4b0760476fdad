// The search quotes a few words of each page it finds, from the page's main area: the article, but also the theme's
// buttons ("System Settings", "Light", "Dark") and its table of contents. Quote the article alone, without the lab's
// box at its top. Loaded on every page (conf.py); it acts on the search page, where searchtools.js defines Search.
document.addEventListener("DOMContentLoaded", () => {
  if (typeof Search === "undefined") return;
  const quote = Search.htmlToText;
  Search.htmlToText = (htmlString, anchor) => {
    const page = new DOMParser().parseFromString(htmlString, "text/html");
    const main = page.querySelector('[role="main"]');
    const article = page.querySelector("article.bd-article");
    if (!main || !article) return quote(htmlString, anchor);
    article.querySelectorAll(".lab-top").forEach((element) => element.remove());
    main.replaceChildren(article);
    return quote(page.documentElement.outerHTML, anchor);
  };
});
