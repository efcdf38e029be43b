// The parser fuzz targets with a bounded number of cases, so every `npm test` tries fresh
// random inputs (fast-check prints the seed and the shrunk input of any failure; rerun it with
// `npm run fuzz -- --seed N`). Longer runs: `npm run fuzz -- --minutes N`.
import { describe, it } from 'node:test';
import { PARSER_TARGETS } from './parsers.js';

describe('fuzzing the parsers a stranger reaches', () => {
  for (const target of PARSER_TARGETS) {
    it(`${target.name}: a value or a clear error, never a crash or a hang`, async () => {
      await target.run({ numRuns: target.testRuns });
    });
  }
});
