// A whole mock interview in the playground, in headless Debian Chromium: one typed on a
// desktop screen, one spoken on a phone-sized screen with an audio file played into a
// fake microphone. Screenshots of the reports go to --out.
//
//   node playground.mjs --url http://127.0.0.1:PORT --resume cv.docx --audio speech.wav --out DIR
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith("--") ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
for (const k of ["url", "resume", "audio", "out"]) {
  if (!args[k]) throw new Error(`--${k} is required`);
}
mkdirSync(args.out, { recursive: true });

const JOB = `Senior Backend Engineer
We build payment infrastructure used by thousands of merchants.
Requirements:
- 5+ years building backend services in Go or Java
- PostgreSQL and Kafka in production
- Owning reliability: incidents, on-call, latency budgets`;

const ANSWERS = [
  "At my last company our payment API had a p99 latency of 900 ms and merchants were timing out. " +
    "I was responsible for fixing it before the holiday peak. I profiled the service, found N+1 queries " +
    "against PostgreSQL, and I rewrote the hot path with batched queries and a read-through cache. " +
    "As a result p99 dropped from 900 ms to 120 ms and timeouts fell by 95 percent.",
  "I personally led the rollout: I wrote the migration plan, ran the canary, and paged myself for the first week. " +
    "The outcome was zero incidents during the peak and a 30 percent cut in infrastructure cost.",
  "In short, I owned it end to end and measured it: latency, error rate and cost all improved, by 87, 95 and 30 percent.",
];

const launch = () =>
  chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--no-sandbox",
      "--use-fake-ui-for-media-stream",
      "--use-fake-device-for-media-stream",
      `--use-file-for-fake-audio-capture=${args.audio}`,
    ],
  });

async function prepare(page, uid, questions) {
  const problems = [];
  page.on("pageerror", (e) => problems.push("page error: " + e.message));
  page.on("console", (m) => m.type() === "error" && problems.push("console: " + m.text()));
  await page.goto(args.url);
  await page.getByLabel("User id").fill(uid);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("#signed-in").waitFor({ state: "visible" });
  // A step out of order is said plainly, in the alert region.
  await page.getByRole("button", { name: "Start interview" }).click();
  const alert = page.getByRole("alert");
  await alert.waitFor({ state: "visible" });
  if ((await alert.textContent()) !== "Parse a resume first.") throw new Error("unclear error: " + (await alert.textContent()));
  await page.getByLabel(/Resume file/).setInputFiles(args.resume);
  await page.getByRole("button", { name: "Parse resume" }).click();
  await page.locator("#resume-out").waitFor({ state: "visible", timeout: 60000 });
  if (await alert.isVisible()) throw new Error("the error stayed after a successful step");
  await page.getByLabel(/paste the job description/).fill(JOB);
  await page.getByLabel("Mode").selectOption("behavioral");
  await page.getByLabel("Questions").fill(String(questions));
  await page.getByRole("button", { name: "Start interview" }).click();
  await page.locator("#interview-section").waitFor({ state: "visible", timeout: 120000 });
  // The job as read from the pasted text.
  const job = await page.locator("#job-summary").textContent();
  if (!job.includes("Kafka")) throw new Error("the extracted job is not shown: " + job);
  return problems;
}

async function noError(page, problems) {
  const err = page.locator("#error");
  if (await err.isVisible()) throw new Error("the page shows an error: " + (await err.textContent()));
  if (problems.length) throw new Error(problems.join("\n"));
}

async function report(page, name) {
  await page.getByRole("button", { name: "Get the report" }).click();
  await page.locator("#report-section").waitFor({ state: "visible", timeout: 120000 });
  const overall = await page.locator("#overall").textContent();
  if (!/^Overall \d+ \/ 100$/.test(overall)) throw new Error("no overall score: " + overall);
  if ((await page.locator("#chart-competencies [role=meter]").count()) < 1) throw new Error("no competency chart");
  if ((await page.locator("#chart-answers svg rect").count()) < 1) throw new Error("no per-answer chart");
  await page.screenshot({ path: join(args.out, name), fullPage: true });
  return overall;
}

async function typedInterview(browser) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const problems = await prepare(page, "typed-candidate", 2);
  let answered = 0;
  while (await page.locator("#answer-form").isVisible()) {
    if (answered >= 6) throw new Error("the interview did not end after 6 answers");
    const before = await page.locator("#transcript li").count();
    await page.getByLabel("Your answer").fill(ANSWERS[Math.min(answered, ANSWERS.length - 1)]);
    await page.getByRole("button", { name: "Send answer" }).click();
    await page.locator("#transcript li").nth(before).waitFor({ timeout: 120000 });
    await noError(page, problems);
    // The streamed evaluation and reply are on the page.
    if (!(await page.locator("#evaluation").isVisible())) throw new Error("no evaluation shown");
    const star = await page.locator("#eval-body [role=meter]").count();
    if (star < 4) throw new Error("no STAR coverage shown");
    if (!(await page.locator("#reply").textContent()).trim()) throw new Error("no interviewer reply");
    answered += 1;
  }
  const overall = await report(page, "report-typed.png");
  await noError(page, problems);
  console.log(`typed interview: ${answered} answers, ${overall}`);
  await page.close();
}

async function spokenInterview(browser) {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const page = await context.newPage();
  const problems = await prepare(page, "spoken-candidate", 1);
  await page.getByRole("button", { name: "Record answer" }).click();
  await page.getByText("Recording…").waitFor();
  await page.waitForTimeout(9000);
  await page.getByRole("button", { name: "Stop and send" }).click();
  await page.locator("#transcript li").first().waitFor({ timeout: 240000 });
  await noError(page, problems);
  const said = (await page.locator("#transcript li").first().textContent()).toLowerCase();
  if (!said.includes("country")) throw new Error("the transcript does not have the recording's words: " + said);
  // The spoken answer's evaluation: STAR coverage and the pace measured from the audio.
  if ((await page.locator("#eval-body [role=meter]").count()) < 4) throw new Error("no STAR coverage for the spoken answer");
  const measured = await page.locator("#eval-body").textContent();
  if (!/\d+ words\/min/.test(measured)) throw new Error("no pace for the spoken answer: " + measured);
  // Nothing is wider than the phone's screen.
  const wide = await page.evaluate(() => document.documentElement.scrollWidth);
  if (wide > 400) throw new Error(`the page is ${wide}px wide on a 390px screen`);
  while (await page.locator("#answer-form").isVisible()) {
    const before = await page.locator("#transcript li").count();
    await page.getByLabel("Your answer").fill(ANSWERS[2]);
    await page.getByRole("button", { name: "Send answer" }).click();
    await page.locator("#transcript li").nth(before).waitFor({ timeout: 120000 });
    if (before >= 5) throw new Error("the interview did not end");
  }
  const overall = await report(page, "report-spoken-phone.png");
  await noError(page, problems);
  console.log(`spoken interview: transcript "${said.slice(0, 80)}…", ${overall}`);
  await context.close();
}

const browser = await launch();
try {
  await typedInterview(browser);
  await spokenInterview(browser);
} finally {
  await browser.close();
}
console.log("playground: ok");
