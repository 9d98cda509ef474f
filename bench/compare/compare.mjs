// The decision workload of bench/decide_benchmark.cc, run in two policy engines for
// comparison: Cedar (@cedar-policy/cedar-wasm, schema and policy set preparsed,
// statefulIsAuthorized) and node-casbin. Same shape: 1M subjects with 1-5 consent events each
// (grant or withdraw, chat/audio/video/all content, for ai_training.first_party), and random
// single-subject questions "may content.chat of this subject train first-party models?".
//
// The peers get the consent state already folded into per-subject sets of granted categories
// (they have no notion of an event history, versions or positions), which is less work than
// Assent does per decision. Prints one JSON object with decisions per second per engine.
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { newEnforcer, newModelFromString } from 'casbin';

const SUBJECTS = Number(process.env.SUBJECTS || 1_000_000);
const CASBIN_SUBJECTS = Number(process.env.CASBIN_SUBJECTS || 10_000);
const SECONDS = Number(process.env.SECONDS || 3);

// A small seeded PRNG (mulberry32) so runs are repeatable.
function rng(seed) {
  return () => {
    seed |= 0; seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Folds the generated events into the categories each subject has granted (the effective
// event per category is the last one covering it).
function buildWorld(n) {
  const rand = rng(20230807);
  const scopes = [['content.chat'], ['content.audio'], ['content.video'],
                  ['content.chat', 'content.audio', 'content.video']];
  const granted = new Array(n);
  for (let i = 0; i < n; i++) {
    const events = 1 + Math.floor(rand() * 5);
    const state = new Map();
    for (let k = 0; k < events; k++) {
      const grant = rand() >= 1 / 3;
      for (const c of scopes[Math.floor(rand() * 4)]) state.set(c, grant);
    }
    granted[i] = [...state].filter(([, g]) => g).map(([c]) => c);
  }
  return granted;
}

function timeLoop(fn) {
  let calls = 0, allowed = 0;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(SECONDS * 1e9);
  for (;;) {
    for (let i = 0; i < 1000; i++, calls++) allowed += fn(calls) ? 1 : 0;
    if (process.hrtime.bigint() > deadline) break;
  }
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  return { decisions_per_second: calls / secs, allowed_share: allowed / calls, calls };
}

const SCHEMA = `
entity User { consents: Set<String> };
entity Data { category: String };
action "ai_training.first_party", "ai_training.third_party", "service.delivery"
  appliesTo { principal: User, resource: Data };
`;
const POLICIES = `
permit(principal, action == Action::"service.delivery", resource);
permit(principal, action == Action::"ai_training.first_party", resource)
  when { ["content.audio", "content.video", "content.chat"].contains(resource.category) &&
         principal.consents.contains(resource.category) };
forbid(principal, action == Action::"ai_training.third_party", resource);
`;

function benchCedar(granted) {
  const s = cedar.preparseSchema('assent', SCHEMA);
  if (s.type !== 'success') throw new Error(JSON.stringify(s));
  const p = cedar.preparsePolicySet('assent', { staticPolicies: POLICIES });
  if (p.type !== 'success') throw new Error(JSON.stringify(p));
  const users = granted.map((g, i) => ({
    uid: { type: 'User', id: `user-${i}` }, attrs: { consents: g }, parents: [] }));
  const data = { uid: { type: 'Data', id: 'm1' }, attrs: { category: 'content.chat' }, parents: [] };
  const pick = rng(7);
  const queries = Int32Array.from({ length: 1 << 20 }, () => Math.floor(pick() * granted.length));
  const action = { type: 'Action', id: 'ai_training.first_party' };
  const resource = { type: 'Data', id: 'm1' };
  return timeLoop((i) => {
    const u = users[queries[i & ((1 << 20) - 1)]];
    const r = cedar.statefulIsAuthorized({
      principal: u.uid, action, resource, context: {}, entities: [u, data],
      preparsedPolicySetId: 'assent', preparsedSchemaName: 'assent', validateRequest: false,
    });
    if (r.type !== 'success') throw new Error(JSON.stringify(r.errors));
    return r.response.decision === 'allow';
  });
}

async function benchCasbin(granted) {
  const model = newModelFromString(`
[request_definition]
r = sub, obj, act
[policy_definition]
p = sub, obj, act
[policy_effect]
e = some(where (p.eft == allow))
[matchers]
m = r.sub == p.sub && r.obj == p.obj && r.act == p.act
`);
  const e = await newEnforcer(model);
  const rules = [];
  granted.forEach((g, i) => g.forEach((c) => rules.push([`user-${i}`, c, 'ai_training.first_party'])));
  await e.addPolicies(rules);
  const pick = rng(7);
  const queries = Int32Array.from({ length: 1 << 16 }, () => Math.floor(pick() * granted.length));
  // enforceSync: the synchronous check; the async enforce() adds a promise per call.
  return timeLoop((i) => e.enforceSync(`user-${queries[i & 0xffff]}`, 'content.chat',
                                       'ai_training.first_party'));
}

const world = buildWorld(SUBJECTS);
const out = { subjects: SUBJECTS, cedar_version: cedar.getCedarVersion() };
out.cedar = benchCedar(world);
out.casbin = { subjects: CASBIN_SUBJECTS, ...(await benchCasbin(world.slice(0, CASBIN_SUBJECTS))) };
console.log(JSON.stringify(out));
