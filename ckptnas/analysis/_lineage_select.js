// Runs in the browser when a candidate of the lineage tree is clicked (bokeh CustomJS, with
// `nodes`, `path`, `panel`, `hint` and `key` bound): draws the candidate's ancestry on the tree
// and lists what each step inherited. The ancestry is walked here, from the parent column, so
// that the page holds one parent per candidate instead of every candidate's whole chain.
const d = nodes.data
const selected = nodes.selected.indices[0]
const remember = (value) => {
  try {
    if (value === null) sessionStorage.removeItem(key)
    else sessionStorage.setItem(key, value)
  } catch (e) {}  // storage refused (a private window): the selection is only not kept
}
if (selected === undefined) {
  path.data = {xs: [], ys: []}
  panel.text = hint
  remember(null)
  return
}
const row_of = new Map()
for (let k = 0; k < d.id.length; k++) row_of.set(d.id[k], k)
const chain = []
for (let k = selected; k !== undefined && chain.length < d.id.length; k = row_of.get(d.parent[k])) {
  chain.push(k)
}
const xs = []
const ys = []
for (let s = 0; s + 1 < chain.length; s++) {
  const child = chain[s]
  const donor = chain[s + 1]
  xs.push([d.x[donor], d.x[donor], d.x[child]])
  ys.push([d.y[donor], d.y[child], d.y[child]])
}
path.data = {xs, ys}
const esc = (t) => String(t).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
const score = (v) => (Number.isFinite(v) ? v.toFixed(4) : "-")
let html = `<h4>Ancestry of candidate ${d.id[selected]}</h4>`
html += `<p class="arch">${esc(d.arch[selected])}</p>`
html += "<table class='ancestry'><tr><th>candidate</th><th>objective</th>"
html += "<th>inherited</th><th>layers taken</th></tr>"
for (const k of chain) {
  html += `<tr><td>${d.id[k]}</td><td>${score(d.objective[k])}</td>`
  html += `<td>${esc(d.inherited[k])}</td><td>${esc(d.layers[k] || "-")}</td></tr>`
}
panel.text = html + "</table>"
remember(String(d.id[selected]))
