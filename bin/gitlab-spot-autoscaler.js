#!/usr/bin/env node
'use strict';
// The CLI is bundled by `npm run build` (run by `npm ci` through `prepare`).
const path = require('path');
const fs = require('fs');
const bundle = path.join(__dirname, '..', 'dist', 'cli.js');
if (!fs.existsSync(bundle)) {
  console.error('gitlab-spot-autoscaler: dist/cli.js is missing; run `npm ci` (or `npm run build`) in ' + path.dirname(__dirname));
  process.exit(1);
}
require(bundle).main(process.argv.slice(2)).then(
  (code) => process.exit(code ?? 0),
  (err) => {
    console.error('gitlab-spot-autoscaler: ' + (err && err.message ? err.message : String(err)));
    process.exit(1);
  },
);
