/* The book's own scripts (see _config.yml: html_js_files). Nothing here loads anything from
   the network. */
"use strict";

/* Tables: a column whose body cells are all numbers (or empty) gets .ck-num on every cell,
   header included, so coursekit.css can right-align it. */
const CK_NUMBER = /^[-+\u2212]?(\d[\d,\u202f]*(\.\d*)?|\.\d+)(e[-+]?\d+)?\s*%?$/i;

function ckMarkNumericColumns(table) {
  const rows = [...table.querySelectorAll("tbody tr")];
  if (!rows.length) return;
  const width = Math.max(...rows.map((r) => r.cells.length));
  for (let col = 0; col < width; col++) {
    const cells = rows.map((r) => r.cells[col]).filter(Boolean);
    const texts = cells.map((c) => c.textContent.trim()).filter((t) => t !== "");
    if (!texts.length || !texts.every((t) => CK_NUMBER.test(t))) continue;
    cells.forEach((c) => c.classList.add("ck-num"));
    table.querySelectorAll("thead tr").forEach((r) => {
      if (r.cells[col]) r.cells[col].classList.add("ck-num");
    });
  }
}

/* Search: the result snippets are cut from the pages' HTML, where formulas are still TeX
   (MathJax typesets them in the browser). Turn each formula into readable text first. */
const CK_SYMBOLS = {
  alpha: "α", beta: "β", gamma: "γ", delta: "δ", epsilon: "ε", varepsilon: "ε", eta: "η",
  theta: "θ", lambda: "λ", mu: "μ", nu: "ν", pi: "π", rho: "ρ", sigma: "σ", tau: "τ",
  phi: "φ", varphi: "φ", chi: "χ", psi: "ψ", omega: "ω", Delta: "Δ", Sigma: "Σ",
  Omega: "Ω", Theta: "Θ", Lambda: "Λ", Phi: "Φ", partial: "∂", nabla: "∇", sum: "Σ",
  prod: "Π", int: "∫", infty: "∞", cdot: "·", times: "×", le: "≤", leq: "≤", ge: "≥",
  geq: "≥", ne: "≠", neq: "≠", approx: "≈", to: "→", rightarrow: "→", leftarrow: "←",
  in: "∈", odot: "⊙", circ: "∘", ldots: "…", dots: "…", cdots: "⋯", R: "ℝ", sqrt: "√",
  max: "max", min: "min", log: "log", exp: "exp", tanh: "tanh",
};

function ckTexToText(tex) {
  let text = tex
    .trim()
    .replace(/^\\[([]/, "")
    .replace(/\\[)\]]$/, "")
    .replace(/^\$+|\$+$/g, "");
  for (let i = 0; i < 4; i++) {
    text = text.replace(/\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}/g, "($1)/($2)");
  }
  text = text
    .replace(/\\(?:mathbf|mathrm|mathit|mathbb|mathcal|boldsymbol|operatorname|text|bar|hat|tilde|dot|vec|overline)\s*\{([^{}]*)\}/g, "$1")
    .replace(/\\(?:left|right|big|Big|bigg|Bigg)\b/g, "")
    .replace(/\\([A-Za-z]+)/g, (m, name) => (name in CK_SYMBOLS ? CK_SYMBOLS[name] : ""))
    .replace(/\\[,;:! ]/g, " ")
    .replace(/\\\\/g, "; ")
    .replace(/&/g, " ")
    .replace(/[{}]/g, "")
    .replace(/\s+/g, " ");
  return text.trim();
}

function ckPatchSearch() {
  if (typeof Search === "undefined" || typeof Search.htmlToText !== "function") return;
  if (Search.ckPatched) return;
  const original = Search.htmlToText;
  Search.htmlToText = (htmlString, anchor) => {
    const doc = new DOMParser().parseFromString(htmlString, "text/html");
    doc.querySelectorAll(".math, span.math, div.math").forEach((node) => {
      node.textContent = ` ${ckTexToText(node.textContent)} `;
    });
    return original(doc.documentElement.outerHTML, anchor);
  };
  Search.ckPatched = true;
}

document.addEventListener("DOMContentLoaded", () => {
  document
    .querySelectorAll(".cell_output table, article table.table")
    .forEach(ckMarkNumericColumns);
  ckPatchSearch();
});
