// The Chinese site's search: Sphinx 8.2 says how many pages it found in a sentence that its Chinese catalogue lacks
// (the catalogue has the sentence of older versions), so the result line would be in English. Loaded on the Chinese
// site only (conf.py), after Sphinx's doctools.js; the search reads the catalogue when it finishes.
const found = "搜索完成，匹配到 ${resultCount} 页。";
Object.assign(Documentation.TRANSLATIONS, {
  "Search finished, found one page matching the search query.": [found, found],
});
