// Counts the scored checks of a `conformance server --requirements <revision> -o <dir>` run, for
// run-next.sh: the checks of the scenarios that the revision's frozen requirement set lists under
// `server:` (the suite also runs its `not_scored` ones, and with a baseline its output does not
// say which those are). A WARNING is counted apart: the suite's baseline treats it as a failure.
//
//   node scored.mjs <results dir> <requirements/REVISION.yaml>
//   -> scored: N scenarios (F not clean), P checks passed, W warned, Q failed
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const [results, requirements] = process.argv.slice(2);

// The `server:` list of the requirement set: `  - <scenario>` lines up to the next key.
const required = new Set();
let inServer = false;
for (const line of readFileSync(requirements, 'utf8').split('\n')) {
  if (/^\S/.test(line)) inServer = line.startsWith('server:');
  else if (inServer) {
    const m = line.match(/^ {2}- (\S+)\s*$/);
    if (m) required.add(m[1]);
  }
}

// One directory per scenario: `server-<scenario>-<ISO timestamp>/checks.json`.
const seen = new Set();
const count = { SUCCESS: 0, WARNING: 0, FAILURE: 0 };
let unclean = 0;
for (const dir of readdirSync(results)) {
  const m = dir.match(/^server-(.+)-\d{4}-\d\d-\d\dT[\d-]+Z$/);
  if (!m || !required.has(m[1])) continue;
  seen.add(m[1]);
  const checks = JSON.parse(readFileSync(join(results, dir, 'checks.json'), 'utf8'));
  let clean = true;
  for (const check of checks) {
    if (check.status in count) count[check.status] += 1;
    if (check.status === 'WARNING' || check.status === 'FAILURE') clean = false;
  }
  if (!clean) unclean += 1;
}
const missing = [...required].filter((s) => !seen.has(s));
if (missing.length > 0) {
  console.error(`scored.mjs: no results in ${results} for ${missing.join(', ')}`);
  process.exit(1);
}
console.log(
  `scored: ${seen.size} scenarios (${unclean} not clean), ${count.SUCCESS} checks passed, ` +
    `${count.WARNING} warned, ${count.FAILURE} failed`
);
