// The training-data gate's peer: DuckDB running the same filter as SQL — read the manifest's
// lines, keep those whose category the purpose allows, that name at least one subject and none
// who objected (the rule asks subjects; the consent state is exported by gate_bench generate),
// write the kept lines in input order.
// Best of five runs, each writing a new OUT (Assent's runs are timed the same way).
// Usage: node gate_duckdb.mjs DIR OUT  — prints {"seconds":..,"kept":..}
import { DuckDBInstance } from '@duckdb/node-api';
import { rmSync } from 'fs';

const [dir, out] = process.argv.slice(2);
const db = await DuckDBInstance.create(':memory:', { threads: String(Math.max(1, (await import('os')).cpus().length)) });
const c = await db.connect();
let seconds = Infinity;
for (let run = 0; run < 5; ++run) {
rmSync(out, { force: true });
const start = process.hrtime.bigint();
await c.run(`CREATE OR REPLACE TABLE objected_subjects AS SELECT * FROM read_csv('${dir}/objected_subjects.csv')`);
await c.run(`CREATE OR REPLACE TABLE objected_accounts AS SELECT * FROM read_csv('${dir}/objected_accounts.csv')`);
await c.run(`CREATE OR REPLACE TABLE allowed AS SELECT * FROM read_csv('${dir}/allowed_categories.csv')`);
await c.run(`
  COPY (
    WITH lines AS (
      SELECT row_number() OVER () AS n, line FROM read_csv('${dir}/manifest.jsonl',
        columns = {'line': 'VARCHAR'}, header = false, delim = '\\x1e', quote = '', escape = '',
        auto_detect = false)
    ), items AS (
      SELECT n, line, line ->> '$.category' AS category, line ->> '$.account' AS account,
             CAST(line -> '$.subjects' AS VARCHAR[]) AS subjects FROM lines
    )
    SELECT line FROM items
    WHERE category IN (SELECT name FROM allowed)
      AND len(subjects) > 0
      AND NOT EXISTS (SELECT 1 FROM unnest(subjects) AS s(x) WHERE x IN (SELECT id FROM objected_subjects))
    ORDER BY n
  ) TO '${out}' (FORMAT csv, HEADER false, DELIMITER '\\x1e', QUOTE '', ESCAPE '')`);
seconds = Math.min(seconds, Number(process.hrtime.bigint() - start) / 1e9);
}
const r = await c.runAndReadAll(`SELECT count(*) FROM read_csv('${out}', columns = {'line': 'VARCHAR'},
  header = false, delim = '\\x1e', quote = '', escape = '', auto_detect = false)`);
console.log(JSON.stringify({ mode: 'duckdb', seconds, kept: Number(r.getRows()[0][0]) }));
