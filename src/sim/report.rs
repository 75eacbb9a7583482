//! `sim --report FILE.html`: one self-contained page (no external script, style or font) with a
//! timeline of a run drawn as SVG: one lane per dispatcher under its node, bars coloured by
//! state, the maintainer's operators with their phases, message arrows (which can be hidden),
//! failover, fault and violation markers, zoom (wheel) and pan (drag), the scenario text beside
//! it and the result above.
//!
//! The page is built from the run's [`Trace`]: its slices are paired here into a small model
//! (lanes, bars, arrows, markers) that the page's script draws, so the trace and the report can
//! never disagree.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::trace::Trace;

/// The timeline a report draws: what [`model`] pairs out of a trace.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Model {
    /// Lanes, top to bottom: (process, track).
    pub lanes: Vec<(String, String)>,
    /// Bars: lane, start and end (µs), depth (0 = a whole dispatcher or operator, 1 = a state or
    /// phase inside it), label.
    pub bars: Vec<(usize, u64, u64, u8, String)>,
    /// Message arrows: from lane, sent at, to lane, received at, kind, outcome.
    pub arrows: Vec<(usize, u64, usize, u64, String, String)>,
    /// Markers across the timeline: at, category, label.
    pub markers: Vec<(u64, String, String)>,
    /// Instants on a lane (a lost message, a fault, an error): lane, at, label.
    pub instants: Vec<(usize, u64, String)>,
    /// The last timestamp (µs).
    pub end: u64,
    /// For an operator's bar, the bars of its phases (indices into `bars`).
    phases: BTreeMap<usize, Vec<usize>>,
}

/// An operator being paired: its lane, its open slices (start, name), and the bars of its
/// phases so far.
type OpenAsync = (usize, Vec<(u64, String)>, Vec<usize>);

/// Pairs the trace's slices into the report's model.
pub fn model(trace: &Trace) -> Model {
    let num = |e: &Value, k: &str| e[k].as_u64().unwrap_or(0);
    let text = |e: &Value, k: &str| e[k].as_str().unwrap_or("").to_string();
    let (processes, tracks) = trace.names();
    // Lanes: per process, dispatcher tracks first (by name), then operator rows, then network.
    let mut order: Vec<((u64, u64), (String, String))> = tracks
        .iter()
        .filter(|(_, t)| !t.is_empty())
        .map(|(&(pid, tid), t)| ((pid, tid), (processes.get(&pid).cloned().unwrap_or_default(), t.clone())))
        .collect();
    let rank = |t: &str| match t {
        "operators" => 1,
        "network" => 2,
        _ if t.ends_with(" default") || t.ends_with(" redo") => 0,
        _ => 3,
    };
    order.sort_by(|a, b| (&a.1 .0, rank(&a.1 .1), &a.1 .1).cmp(&(&b.1 .0, rank(&b.1 .1), &b.1 .1)));
    let mut m = Model::default();
    let mut lane_of = BTreeMap::new();
    for (key, lane) in order {
        lane_of.insert(key, m.lanes.len());
        m.lanes.push(lane);
    }
    let mut stacks: BTreeMap<usize, Vec<(u64, String)>> = BTreeMap::new();
    let mut asyncs: BTreeMap<u64, OpenAsync> = BTreeMap::new();
    let mut sends: BTreeMap<u64, (usize, u64, String)> = BTreeMap::new();
    let mut last_x: BTreeMap<usize, (u64, String)> = BTreeMap::new();
    for e in trace.events() {
        let ts = num(e, "ts");
        m.end = m.end.max(ts);
        let lane = lane_of.get(&(num(e, "pid"), num(e, "tid"))).copied();
        match (e["ph"].as_str().unwrap_or(""), lane) {
            ("B", Some(lane)) => stacks.entry(lane).or_default().push((ts, text(e, "name"))),
            ("E", Some(lane)) => {
                let stack = stacks.entry(lane).or_default();
                if let Some((start, name)) = stack.pop() {
                    m.bars.push((lane, start, ts, stack.len().min(1) as u8, name));
                }
            }
            ("b", Some(lane)) => asyncs
                .entry(num(e, "id"))
                .or_insert((lane, Vec::new(), Vec::new()))
                .1
                .push((ts, text(e, "name"))),
            ("e", _) => {
                if let Some((lane, stack, phases)) = asyncs.get_mut(&num(e, "id")) {
                    if let Some((start, name)) = stack.pop() {
                        let depth = stack.len().min(1) as u8;
                        let name = match e["args"]["outcome"].as_str() {
                            Some(outcome) => format!("{name}: {outcome}"),
                            None => name,
                        };
                        m.bars.push((*lane, start, ts, depth, name));
                        if depth == 1 {
                            phases.push(m.bars.len() - 1);
                        } else {
                            m.phases.insert(m.bars.len() - 1, std::mem::take(phases));
                        }
                    }
                }
            }
            ("X", Some(lane)) => {
                let label = match e["args"]["outcome"].as_str() {
                    Some(outcome) => outcome.to_string(),
                    None => String::new(),
                };
                last_x.insert(lane, (ts, label));
            }
            ("s", Some(lane)) => {
                sends.insert(num(e, "id"), (lane, ts, text(e, "name")));
            }
            ("f", Some(lane)) => {
                if let Some((from, sent, kind)) = sends.remove(&num(e, "id")) {
                    let outcome = last_x.get(&lane).map(|x| x.1.clone()).unwrap_or_default();
                    m.arrows.push((from, sent, lane, ts, kind, outcome));
                }
            }
            ("i", _) if e["s"] == "g" => m.markers.push((ts, text(e, "cat"), text(e, "name"))),
            ("i", Some(lane)) => m.instants.push((lane, ts, text(e, "name"))),
            _ => {}
        }
    }
    // Operators overlap on one track: give each its own row under the maintainer's node.
    spread_operator_rows(&mut m);
    m
}

/// At most this many operator rows per maintainer node: beyond it (a bootstrap that starts an
/// operator for every span at once), operators share the row that frees up first.
const OPERATOR_ROWS: usize = 8;

/// Operator bars share a track; overlapping ones move to rows of their own (`operators 2`, ...),
/// the first row that is free when each starts, up to [`OPERATOR_ROWS`].
fn spread_operator_rows(m: &mut Model) {
    let processes: Vec<String> = m.lanes.iter().filter(|l| l.1 == "operators").map(|l| l.0.clone()).collect();
    for process in processes {
        // Looked up again for each process: rows inserted for an earlier one move the later lanes.
        let Some(lane) = m.lanes.iter().position(|l| l.0 == process && l.1 == "operators") else { continue };
        let mut outer: Vec<usize> =
            (0..m.bars.len()).filter(|&i| m.bars[i].0 == lane && m.bars[i].3 == 0).collect();
        outer.sort_by_key(|&i| (m.bars[i].1, m.bars[i].2));
        let mut rows: Vec<(usize, u64)> = vec![(lane, 0)];
        let mut moves = Vec::new();
        for i in outer {
            let (_, start, end, _, _) = m.bars[i];
            let earliest = || (0..rows.len()).min_by_key(|&r| rows[r].1).unwrap_or(0);
            let row = match rows.iter().position(|r| r.1 <= start) {
                Some(r) => r,
                None if rows.len() >= OPERATOR_ROWS => earliest(),
                None => {
                    let process = m.lanes[lane].0.clone();
                    let name = format!("operators {}", rows.len() + 1);
                    let at = rows.last().map_or(lane, |r| r.0) + 1;
                    m.lanes.insert(at, (process, name));
                    for bar in m.bars.iter_mut().filter(|b| b.0 >= at) {
                        bar.0 += 1;
                    }
                    for a in &mut m.arrows {
                        a.0 += usize::from(a.0 >= at);
                        a.2 += usize::from(a.2 >= at);
                    }
                    for x in &mut m.instants {
                        x.0 += usize::from(x.0 >= at);
                    }
                    rows.push((at, 0));
                    rows.len() - 1
                }
            };
            rows[row].1 = rows[row].1.max(end.max(start + 1));
            moves.push((i, rows[row].0));
        }
        // Phases follow their operator (its `phases` are the bars paired inside it, see `model`).
        for (i, to) in moves {
            let phases = m.phases.get(&i).cloned().unwrap_or_default();
            for p in phases.into_iter().chain([i]) {
                m.bars[p].0 = to;
            }
        }
    }
}

impl Model {
    /// The model as the compact JSON the page's script reads.
    pub fn to_json(&self) -> Value {
        json!({
            "lanes": self.lanes,
            "bars": self.bars,
            "arrows": self.arrows,
            "markers": self.markers,
            "instants": self.instants,
            "end": self.end,
        })
    }
}

/// Escapes text for an HTML element.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The whole page for a run: `title` (the scenario's name), its `scenario` text and the `result`
/// line.
pub fn html(trace: &Trace, title: &str, scenario: &str, result: &str) -> String {
    // Every `<` of the data escaped (JSON allows `\u003c` inside strings, the only place one
    // can be): no label can end the script element or open a comment in it.
    let data = model(trace).to_json().to_string().replace('<', "\\u003c");
    let fill = |name: &str| match name {
        "title" => escape(title),
        "result" => escape(result),
        "scenario" => escape(scenario),
        "passed" => (if result.starts_with("pass") { "pass" } else { "fail" }).to_string(),
        "data" => data.clone(),
        _ => String::new(),
    };
    // One pass over the template: text put in is never searched for placeholders again.
    let mut page = String::with_capacity(PAGE.len() + data.len() + scenario.len());
    let mut rest = PAGE;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start..].find("}}") else { break };
        page.push_str(&rest[..start]);
        page.push_str(&fill(&rest[start + 2..start + len]));
        rest = &rest[start + len + 2..];
    }
    page.push_str(rest);
    page
}

const PAGE: &str = r##"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{title}}</title>
<style>
body{margin:0;font:12px/1.4 system-ui,sans-serif;color:#222;display:flex;height:100vh}
#main{flex:1;display:flex;flex-direction:column;min-width:0}
#bar{padding:6px 10px;border-bottom:1px solid #ccc;display:flex;gap:16px;align-items:center}
#result.pass{color:#1a7f37}#result.fail{color:#c62828;font-weight:bold}
#view{flex:1;overflow:auto;cursor:grab}
#side{width:34%;max-width:520px;border-left:1px solid #ccc;overflow:auto;padding:0 10px}
pre{font:11px/1.35 ui-monospace,monospace;white-space:pre-wrap}
svg text{font:10px system-ui,sans-serif;pointer-events:none}
.lane{fill:#fafafa}.lane.odd{fill:#f0f0f0}.node{font-weight:bold}
.arrow{stroke-width:1;opacity:.55}.arrow.bad{stroke:#c62828}.arrow.ok{stroke:#555}
.marker{stroke-width:1.5;stroke-dasharray:4 3}.marker.violation{stroke:#c62828}
.marker.maintainer{stroke:#6a1b9a}.marker.fault{stroke:#ef6c00}.marker.settle{stroke:#2e7d32}
.instant{fill:#c62828}
</style></head><body>
<div id="main">
<div id="bar"><b>{{title}}</b><span id="result" class="{{passed}}">{{result}}</span>
<label><input type="checkbox" id="arrows" checked> message arrows</label>
<button id="fit">fit</button><span id="range"></span></div>
<div id="view"><svg id="svg" xmlns="http://www.w3.org/2000/svg"></svg></div>
</div>
<div id="side"><h3>Scenario</h3><pre>{{scenario}}</pre></div>
<script id="data" type="application/json">{{data}}</script>
<script>
"use strict";
// What a browser test reads back from the page: the first script error, if any.
window.addEventListener("error", ev => { document.body.dataset.error = String(ev.message); });
const M = JSON.parse(document.getElementById("data").textContent);
const NS = "http://www.w3.org/2000/svg", LANE = 18, LEFT = 230, TOP = 36;
const colours = {creating:"#9ecae1",initializing:"#c7e9c0",working:"#31a354","waiting-merge":"#fdae6b",
  preparing:"#bcbddc","merge-ready":"#756bb1",closing:"#de2d26",stopped:"#999",removed:"#999"};
function colour(label, depth) {
  if (depth === 0) return "#dfe6ee";
  if (colours[label]) return colours[label];
  let h = 0; for (const c of label) h = (h * 31 + c.charCodeAt(0)) % 360;
  return "hsl(" + h + ",45%,62%)";
}
let t0 = 0, t1 = Math.max(M.end, 1);
const svg = document.getElementById("svg"), view = document.getElementById("view");
function el(name, attrs, text) {
  const e = document.createElementNS(NS, name);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}
function draw() {
  const width = Math.max(view.clientWidth - 4, 400), plot = width - LEFT - 10;
  const x = t => LEFT + (t - t0) / (t1 - t0) * plot;
  const height = TOP + M.lanes.length * LANE + 24;
  svg.setAttribute("width", width); svg.setAttribute("height", height);
  svg.textContent = "";
  const lanes = el("g", {id: "lanes"}), bars = el("g", {id: "bars"}), arrows = el("g", {id: "arrow-layer"});
  let last = null;
  M.lanes.forEach(([process, track], i) => {
    const y = TOP + i * LANE;
    lanes.appendChild(el("rect", {class: "lane" + (i % 2 ? " odd" : ""), x: 0, y, width, height: LANE}));
    if (process !== last) lanes.appendChild(el("text", {class: "node", x: 4, y: y + 12}, process));
    lanes.appendChild(el("text", {x: 60, y: y + 12}, track));
    last = process;
  });
  // Whole dispatchers and operators first, their states and phases over them.
  for (const [lane, s, e, depth, label] of M.bars.filter(b => b[3] === 0).concat(M.bars.filter(b => b[3] === 1))) {
    if (e < t0 || s > t1) continue;
    const y = TOP + lane * LANE + (depth ? 4 : 1), h = depth ? LANE - 8 : LANE - 2;
    const x0 = Math.max(x(s), LEFT), x1 = Math.min(x(e), width), w = Math.max(x1 - x0, 1);
    const r = el("rect", {class: "bar", x: x0, y, width: w, height: h, fill: colour(label, depth),
      "data-label": label, "data-depth": depth});
    r.appendChild(el("title", {}, label + " (" + (s / 1000) + "-" + (e / 1000) + " ms)"));
    bars.appendChild(r);
    if (depth === 1 && w > 50) bars.appendChild(el("text", {x: x0 + 2, y: y + h - 2}, label));
  }
  for (const [from, s, to, e, kind, outcome] of M.arrows) {
    if (e < t0 || s > t1) continue;
    const bad = outcome.startsWith("Dropped") || outcome === "link cut" || outcome === "sender crashed" || outcome === "receiver down";
    const line = el("line", {class: "arrow " + (bad ? "bad" : "ok"), x1: x(s), y1: TOP + from * LANE + LANE / 2,
      x2: x(e), y2: TOP + to * LANE + LANE / 2});
    line.appendChild(el("title", {}, kind + ": " + outcome));
    arrows.appendChild(line);
  }
  arrows.style.display = document.getElementById("arrows").checked ? "" : "none";
  for (const [lane, t, label] of M.instants) {
    if (t < t0 || t > t1) continue;
    const c = el("circle", {class: "instant", cx: x(t), cy: TOP + lane * LANE + LANE / 2, r: 3});
    c.appendChild(el("title", {}, label));
    bars.appendChild(c);
  }
  svg.append(lanes, bars, arrows);
  // A time axis: about eight ticks, at 1, 2 or 5 times a power of ten milliseconds.
  const span = (t1 - t0) / 1000, raw = span / 8, p = Math.pow(10, Math.floor(Math.log10(Math.max(raw, 1e-3))));
  const step = [1, 2, 5, 10].map(k => k * p).find(s => s >= raw) * 1000;
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
    svg.appendChild(el("line", {x1: x(t), y1: height - 14, x2: x(t), y2: height - 8, stroke: "#888"}));
    svg.appendChild(el("text", {x: x(t) + 2, y: height - 1}, (t / 1000) + " ms"));
  }
  M.markers.forEach(([t, category, label], i) => {
    if (t < t0 || t > t1) return;
    const g = el("g", {class: "marker-group"});
    g.appendChild(el("line", {class: "marker " + category, x1: x(t), y1: TOP - 4, x2: x(t), y2: height}));
    // Labels alternate between two rows, so two markers at one moment stay readable.
    const text = label.length > 60 ? label.slice(0, 60) + "..." : label;
    g.appendChild(el("text", {x: x(t) + 3, y: 12 + (i % 2) * 13}, text));
    g.appendChild(el("title", {}, label));
    svg.appendChild(g);
  });
  // What was drawn, for a browser test to read back (the lanes, and the bars in view).
  document.body.dataset.lanes = M.lanes.length;
  document.body.dataset.bars = bars.querySelectorAll("rect.bar").length;
  document.getElementById("range").textContent = (t0 / 1000).toFixed(1) + " - " + (t1 / 1000).toFixed(1) + " ms";
}
view.addEventListener("wheel", ev => {
  ev.preventDefault();
  const width = Math.max(view.clientWidth - 4, 400), plot = width - LEFT - 10;
  const at = t0 + Math.min(Math.max(ev.offsetX - LEFT, 0), plot) / plot * (t1 - t0);
  const k = ev.deltaY < 0 ? 0.8 : 1.25;
  t0 = Math.max(0, at - (at - t0) * k); t1 = Math.min(Math.max(M.end, 1), at + (t1 - at) * k);
  if (t1 - t0 < 100) t1 = t0 + 100;
  draw();
}, {passive: false});
let drag = null;
view.addEventListener("mousedown", ev => { drag = {x: ev.clientX, t0, t1}; });
window.addEventListener("mouseup", () => { drag = null; });
window.addEventListener("mousemove", ev => {
  if (!drag) return;
  const plot = Math.max(view.clientWidth - 4, 400) - LEFT - 10;
  const dt = (ev.clientX - drag.x) / plot * (drag.t1 - drag.t0);
  t0 = drag.t0 - dt; t1 = drag.t1 - dt; draw();
});
document.getElementById("arrows").addEventListener("change", draw);
document.getElementById("fit").addEventListener("click", () => { t0 = 0; t1 = Math.max(M.end, 1); draw(); });
window.addEventListener("resize", draw);
draw();
</script></body></html>
"##;
