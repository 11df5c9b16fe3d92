// Basic accessibility checks of the page in the browser, from its computed styles:
// form controls with a label, one h1 and no skipped heading level, and the contrast of
// every visible text against the background behind it (WCAG 2: 4.5:1, 3:1 for large
// text). Returns what it found; the test asserts on it.
() => {
  const parse = (text) => {
    const m = text.match(/rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)(?:,\s*([\d.]+))?\)/);
    if (!m) return null;
    return [Number(m[1]), Number(m[2]), Number(m[3]), m[4] === undefined ? 1 : Number(m[4])];
  };
  const luminance = ([r, g, b]) => {
    const channel = (v) => {
      const s = v / 255;
      return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
    };
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  };
  const ratio = (a, b) => {
    const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return (hi + 0.05) / (lo + 0.05);
  };
  const over = (top, bottom) => {
    const a = top[3];
    return [0, 1, 2].map((i) => top[i] * a + bottom[i] * (1 - a)).concat([1]);
  };
  // The colour behind an element: its ancestors' backgrounds, blended from the page up.
  const background = (element) => {
    const layers = [];
    for (let node = element; node && node.nodeType === 1; node = node.parentElement) {
      const colour = parse(getComputedStyle(node).backgroundColor);
      if (colour && colour[3] > 0) layers.push(colour);
      if (colour && colour[3] === 1) break;
    }
    let result = [255, 255, 255, 1];
    for (const layer of layers.reverse()) result = over(layer, result);
    return result;
  };
  const visible = (element) => {
    const box = element.getBoundingClientRect();
    const style = getComputedStyle(element);
    return box.width > 0 && box.height > 0 && style.visibility !== "hidden"
      && box.right > 0 && box.bottom > 0 && style.opacity !== "0";
  };

  const unlabelled = [];
  for (const control of document.querySelectorAll("input, select, textarea")) {
    if (control.type === "hidden") continue;
    const labelled = (control.id && document.querySelector(`label[for="${control.id}"]`))
      || control.closest("label") || control.getAttribute("aria-label")
      || control.getAttribute("aria-labelledby");
    if (!labelled) unlabelled.push(control.outerHTML.slice(0, 120));
  }

  const levels = [...document.querySelectorAll("h1, h2, h3, h4, h5, h6")]
    .map((h) => Number(h.tagName[1]));
  const skipped = [];
  for (let i = 1; i < levels.length; i++) {
    if (levels[i] > levels[i - 1] + 1) skipped.push(`h${levels[i - 1]} then h${levels[i]}`);
  }
  if (levels.length && levels[0] !== 1) skipped.push(`first heading is h${levels[0]}`);

  const lowContrast = [];
  const texts = document.evaluate(
    "//body//text()[normalize-space()]", document, null, XPathResult.ORDERED_NODE_SNAPSHOT_TYPE, null,
  );
  const seen = new Set();
  let checked = 0;
  for (let i = 0; i < texts.snapshotLength; i++) {
    const element = texts.snapshotItem(i).parentElement;
    if (!element || seen.has(element) || !visible(element)) continue;
    if (element.closest("title, style, script, option")) continue;
    seen.add(element);
    const style = getComputedStyle(element);
    const inSvg = element instanceof SVGElement;
    const colour = parse(inSvg ? style.fill : style.color);
    if (!colour) continue;
    const behind = background(inSvg ? element.closest("svg").parentElement : element);
    const shown = over(colour, behind);
    const size = parseFloat(style.fontSize);
    const bold = Number(style.fontWeight) >= 700;
    const large = size >= 24 || (bold && size >= 18.66);
    const needed = large ? 3 : 4.5;
    const found = ratio(shown, behind);
    checked += 1;
    if (found < needed) {
      lowContrast.push(`${found.toFixed(2)}:1 "${element.textContent.trim().slice(0, 40)}"`);
    }
  }
  return {
    h1: levels.filter((level) => level === 1).length,
    unlabelled,
    skipped_levels: skipped,
    low_contrast: lowContrast,
    texts_checked: checked,
  };
}
