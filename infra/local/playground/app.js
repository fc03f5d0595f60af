// The playground: plain browser JavaScript against the public API, no build step and
// nothing loaded from outside the stack.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { token: null, uid: null, resume: null, job: null, interview: null, turns: 0, busy: false };

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = false;
  box.scrollIntoView({ block: "nearest" });
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

function randomKey() {
  return (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random().toString(16).slice(2));
}

/** A call to the stack; errors become one readable line. */
async function api(method, path, { body, json, headers = {}, accept } = {}) {
  const h = { ...headers };
  if (state.token) h["authorization"] = "Bearer " + state.token;
  if (json !== undefined) { h["content-type"] = "application/json"; body = JSON.stringify(json); }
  if (accept) h["accept"] = accept;
  let resp;
  try {
    resp = await fetch(path, { method, headers: h, body });
  } catch (e) {
    throw new Error("The local stack did not answer (" + e.message + "). Is `catalyst serve` running?");
  }
  if (!resp.ok && resp.status !== 202) {
    let detail = resp.statusText;
    try {
      const v = await resp.json();
      if (v && v.error) detail = v.error.message + (v.error.code ? " (" + v.error.code + ")" : "");
    } catch (_) { /* not JSON */ }
    throw new Error(method + " " + path.split("?")[0] + " failed: " + resp.status + " " + detail);
  }
  return resp;
}

async function busy(button, work) {
  if (state.busy) return;
  state.busy = true;
  clearError();
  const label = button.textContent;
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    await work();
  } catch (e) {
    showError(e.message);
  } finally {
    state.busy = false;
    button.disabled = false;
    button.removeAttribute("aria-busy");
    button.textContent = label;
  }
}

function unlock(id) { $(id).classList.remove("locked"); }

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

// 1. Sign in: a development ID token from the stack, verified like a Firebase one.
$("signin-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  busy($("signin"), async () => {
    const uid = $("uid").value.trim();
    const resp = await fetch("/_local/auth/token", {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ uid }),
    });
    const v = await resp.json();
    if (!resp.ok) throw new Error("Sign-in failed: " + (v.error ? v.error.message : resp.status));
    state.token = v.id_token;
    const who = (await (await api("GET", "/v1/auth/whoami")).json()).principal;
    state.uid = who.uid;
    $("signed-in").textContent = "Signed in as " + who.uid + (who.email ? " (" + who.email + ")" : "");
    $("signed-in").hidden = false;
    ["resume-section", "job-section", "start-section"].forEach(unlock);
  });
});

// 2. Resume: the file as the body, with its type.
$("resume-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  busy($("parse"), async () => {
    const file = $("resume-file").files[0];
    if (!file) throw new Error("Choose a resume file first.");
    const resp = await api("POST", "/v1/parse", { body: file, headers: { "content-type": file.type || "application/octet-stream" } });
    const parsed = await resp.json();
    state.resume = parsed.resume;
    const b = parsed.resume.basics || {};
    const jobs = (parsed.resume.work || []).length;
    const skills = (parsed.resume.skills || []).flatMap((s) => [s.name].concat(s.keywords || [])).slice(0, 8);
    $("resume-summary").textContent = (b.name || "Unnamed") + (b.label ? ", " + b.label : "") + " — " + jobs +
      " positions; skills: " + (skills.join(", ") || "none found") + " (" + parsed.format + ")";
    $("resume-json").textContent = JSON.stringify(parsed.resume, null, 2);
    $("resume-out").hidden = false;
  });
});

// 3. Job: extracted from a URL, or the pasted text used as it is.
$("job-url-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  busy($("scrape"), async () => {
    const url = $("job-url").value.trim();
    if (!url) throw new Error("Enter the job posting's URL, or paste its text below.");
    const job = await (await api("POST", "/v1/scrape", { json: { url } })).json();
    state.job = job;
    const j = job.job || {};
    $("job-summary").textContent = (j.title || job.title || "Untitled") + (j.organization ? " at " + j.organization : "");
    $("job-json").textContent = JSON.stringify(job.job || job, null, 2);
    $("job-out").hidden = false;
  });
});

// 4. Start.
$("start-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  busy($("start"), async () => {
    if (!state.resume) throw new Error("Parse a resume first.");
    const body = { resume: state.resume, mode: $("mode").value, questions: Number($("questions").value) };
    const text = $("job-text").value.trim();
    if (state.job && !text) body.job = state.job; else if (text) body.job_text = text;
    else throw new Error("Give the job: extract it from a URL or paste its description.");
    const created = await (await api("POST", "/v1/interviews", { json: body, headers: { "idempotency-key": randomKey() } })).json();
    state.interview = created.id;
    state.turns = 0;
    if (!state.job) {
      // What the Context agent read from the pasted text.
      const p = created.profile;
      $("job-summary").textContent = (p.job_title || "Job") + (p.company ? " at " + p.company : "") +
        " — requires: " + (p.required_skills.join(", ") || "no named skills") +
        (p.gaps.length ? "; not on your resume: " + p.gaps.join(", ") : "");
      $("job-json").textContent = JSON.stringify({ title: p.job_title, company: p.company, seniority: p.seniority,
        role_family: p.role_family, required_skills: p.required_skills, matched: p.matched_skills, gaps: p.gaps }, null, 2);
      $("job-out").hidden = false;
    }
    $("transcript").textContent = "";
    showQuestion(created.question, { asked: 1, planned: created.plan.length });
    $("interview-section").hidden = false;
    $("report-section").hidden = true;
    $("answer").focus();
  });
});

function showQuestion(q, progress) {
  if (!q) {
    $("question").textContent = "The interview is over.";
    $("answer-form").hidden = true;
    $("finish").hidden = false;
    return;
  }
  $("question").textContent = q.text;
  $("progress").textContent = progress ? "(" + Math.min(progress.asked, progress.planned) + " of " + progress.planned + (q.follow_up ? ", follow-up" : "") + ")" : "";
  $("answer-form").hidden = false;
  $("finish").hidden = true;
}

function bars(rows) {
  const box = el("div", undefined, "bars");
  for (const [label, value, shown] of rows) {
    box.append(el("span", label, "label"));
    const bar = el("span", undefined, "bar");
    const fill = el("span");
    fill.style.width = Math.max(0, Math.min(100, value)) + "%";
    bar.append(fill);
    bar.setAttribute("role", "meter");
    bar.setAttribute("aria-label", label);
    bar.setAttribute("aria-valuemin", "0");
    bar.setAttribute("aria-valuemax", "100");
    bar.setAttribute("aria-valuenow", String(Math.round(value)));
    box.append(bar, el("span", shown === undefined ? String(Math.round(value)) : shown));
  }
  return box;
}

function showEvaluation(score, e) {
  const body = $("eval-body");
  body.textContent = "";
  body.append(el("p", "Score " + score + " / 100", "overall"));
  body.append(bars([
    ["Situation", e.situation * 100], ["Task", e.task * 100], ["Action", e.action * 100], ["Result", e.result * 100],
    ["Relevance", e.relevance], ["Structure", e.structure], ["Impact", e.impact],
  ]));
  const pace = e.words_per_minute ? Math.round(e.words_per_minute) + " words/min" : "pace: spoken answers only";
  const fillers = e.fillers + " fillers" + (e.fillers_per_minute != null ? " (" + e.fillers_per_minute.toFixed(1) + "/min)" : "");
  body.append(el("p", e.words + " words · " + pace + " · " + fillers + " · I/we " + e.actions_by_me + "/" + e.actions_by_we, "muted"));
  const list = el("ul");
  (e.feedback || []).forEach((f) => list.append(el("li", f)));
  body.append(list);
  $("evaluation").hidden = false;
}

function addTranscript(question, answer, score) {
  const li = el("li");
  li.append(el("div", question, "q"), el("div", answer), el("div", "score " + score, "muted"));
  $("transcript").append(li);
}

// Typed answers: the turn streams (SSE): evaluation, then the reply as it is written.
$("answer-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  busy($("send"), async () => {
    const answer = $("answer").value.trim();
    if (!answer) throw new Error("Write an answer first (or record one).");
    const question = $("question").textContent;
    $("reply").textContent = "";
    $("reply-box").hidden = false;
    const resp = await api("POST", "/v1/interviews/" + state.interview + "/turns?stream=true", {
      json: { answer }, headers: { "idempotency-key": randomKey() }, accept: "text/event-stream",
    });
    const done = await readTurnStream(resp);
    addTranscript(question, answer, done.score);
    $("answer").value = "";
    afterTurn(done);
  });
});

async function readTurnStream(resp) {
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let done = null;
  for (;;) {
    const { value, done: end } = await reader.read();
    if (value) buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let name = "message";
      let data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data += line.slice(5).trim();
      }
      const v = data ? JSON.parse(data) : {};
      if (name === "evaluation") showEvaluation(v.score, v.evaluation);
      else if (name === "delta") $("reply").textContent += v.text;
      else if (name === "done") done = v;
      else if (name === "error") throw new Error("The turn failed: " + (v.error ? v.error.message : "unknown error"));
    }
    if (end) break;
  }
  if (!done) throw new Error("The turn ended without a result.");
  return done;
}

function afterTurn(result) {
  state.turns = result.turn;
  $("reply").textContent = result.reply;
  $("reply-box").hidden = false;
  if (result.coaching && result.coaching.length) $("reply").append(el("span", " Tip: " + result.coaching.join(" "), "muted"));
  showQuestion(result.next_question, result.progress);
}

// Spoken answers: record in the browser (WebM/Opus), upload, and let `transcribe` and
// the agent do the rest; the page follows the interview until the turn is there.
let recorder = null;
$("record").addEventListener("click", async () => {
  clearError();
  if (recorder && recorder.state === "recording") { recorder.stop(); return; }
  if (!navigator.mediaDevices || !window.MediaRecorder) { showError("This browser cannot record audio."); return; }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (e) {
    showError("No microphone: " + e.message);
    return;
  }
  const type = MediaRecorder.isTypeSupported("audio/webm;codecs=opus") ? "audio/webm;codecs=opus" : "";
  const chunks = [];
  recorder = new MediaRecorder(stream, type ? { mimeType: type } : undefined);
  recorder.ondataavailable = (e) => { if (e.data.size) chunks.push(e.data); };
  recorder.onstop = () => {
    stream.getTracks().forEach((t) => t.stop());
    $("record").setAttribute("aria-pressed", "false");
    $("record").textContent = "Record answer";
    $("recording").textContent = "";
    busy($("send"), () => submitRecording(new Blob(chunks, { type: "audio/webm" })));
  };
  recorder.start(250);
  $("record").setAttribute("aria-pressed", "true");
  $("record").textContent = "Stop and send";
  $("recording").textContent = "Recording…";
});

async function submitRecording(blob) {
  if (blob.size === 0) throw new Error("The recording is empty.");
  const question = $("question").textContent;
  const key = "uploads/audio/" + state.uid + "/" + state.interview + "-" + (state.turns + 1) + "-" + Date.now() + ".webm";
  $("recording").textContent = "Uploading and transcribing…";
  await api("PUT", "/_local/blobs/" + key, { body: blob, headers: { "content-type": "audio/webm" } });
  await api("POST", "/v1/interviews/" + state.interview + "/turns", { json: { audio_ref: key }, headers: { "idempotency-key": randomKey() } });
  const before = state.turns;
  const deadline = Date.now() + 180000;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 1000));
    const rec = await (await api("GET", "/v1/interviews/" + state.interview)).json();
    const t = rec.interview.transcript;
    if (t.length > before) {
      const last = t[t.length - 1];
      $("recording").textContent = "";
      addTranscript(question, last.answer, last.score);
      afterTurn({ turn: last.turn, reply: last.reply, coaching: last.coaching, next_question: rec.interview.question, progress: rec.interview.progress });
      showEvaluation(last.score, last.evaluation);
      return;
    }
  }
  throw new Error("The spoken answer was not evaluated within 3 minutes; check the stack's log.");
}

// Report, with charts drawn as SVG here (nothing from a CDN).
$("finish").addEventListener("click", () => busy($("finish"), async () => {
  const r = await (await api("POST", "/v1/interviews/" + state.interview + "/report")).json();
  $("overall").textContent = "Overall " + r.overall + " / 100";
  $("chart-competencies").textContent = "";
  $("chart-competencies").append(bars(r.competencies.map((c) => [c.competency.replace(/-/g, " "), c.score])));
  $("chart-answers").textContent = "";
  $("chart-answers").append(answerChart(r.answers));
  const fill = (id, items, fmt) => { $(id).textContent = ""; items.forEach((x) => $(id).append(el("li", fmt(x)))); };
  fill("strengths", r.strengths, (p) => p.text + (p.evidence ? " — “" + p.evidence + "”" : ""));
  fill("improvements", r.improvements, (p) => p.text + (p.evidence ? " — “" + p.evidence + "”" : ""));
  fill("stories", r.stories, (s) => s.title + ": " + [s.situation, s.action, s.result].filter(Boolean).join(" "));
  fill("achievements", r.achievements, (a) => a.reframed);
  $("report-section").hidden = false;
  $("report-section").scrollIntoView();
}));

function answerChart(answers) {
  const ns = "http://www.w3.org/2000/svg";
  const w = 600, h = 200, pad = 30;
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 " + w + " " + h);
  const step = (w - 2 * pad) / Math.max(1, answers.length);
  answers.forEach((a, i) => {
    const bh = (h - 2 * pad) * a.score / 100;
    const rect = document.createElementNS(ns, "rect");
    rect.setAttribute("x", String(pad + i * step + step * 0.15));
    rect.setAttribute("y", String(h - pad - bh));
    rect.setAttribute("width", String(step * 0.7));
    rect.setAttribute("height", String(bh));
    rect.setAttribute("fill", "#2356c5");
    const title = document.createElementNS(ns, "title");
    title.textContent = "Answer " + a.turn + ": " + a.score;
    rect.append(title);
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", String(pad + i * step + step / 2));
    label.setAttribute("y", String(h - 8));
    label.setAttribute("text-anchor", "middle");
    label.setAttribute("font-size", "14");
    label.textContent = "#" + a.turn + " " + a.score;
    svg.append(rect, label);
  });
  return svg;
}
