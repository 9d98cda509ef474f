// Reads the Google Benchmark JSON of assent_bench and the peers' JSON from compare.mjs (one
// run, one machine) and prints throughput ratios as a Markdown table.
import { readFileSync } from 'node:fs';

const [decideFile, peersFile] = process.argv.slice(2);
const bench = JSON.parse(readFileSync(decideFile, 'utf8')).benchmarks;
const peers = JSON.parse(readFileSync(peersFile, 'utf8'));
const rate = (name) => {
  const b = bench.find((x) => x.name === name);
  if (!b) throw new Error(`missing benchmark ${name}`);
  return b.items_per_second;
};
const rows = [
  ['Assent, one decision per call', rate('BM_Decide_SingleSubjectConsent/real_time/threads:1')],
  ['Assent, batches of 256 (DecideBatch)', rate('BM_DecideBatch_SingleSubjectConsent/real_time/threads:1')],
];
const cedar = peers.cedar.decisions_per_second;
const casbin = peers.casbin.decisions_per_second;
const fmt = (x) => x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)}k` : x.toFixed(0);
console.log('| engine (one core, 1M subjects) | decisions/s | vs Cedar | vs casbin |');
console.log('|---|---:|---:|---:|');
for (const [name, r] of rows) {
  console.log(`| ${name} | ${fmt(r)} | ${(r / cedar).toFixed(0)}x | ${(r / casbin).toFixed(0)}x |`);
}
console.log(`| Cedar ${peers.cedar_version} (wasm, preparsed, statefulIsAuthorized) | ${fmt(cedar)} | 1x | |`);
console.log(`| node-casbin (${peers.casbin.subjects} subjects; it scans every policy) | ${fmt(casbin)} | | 1x |`);
