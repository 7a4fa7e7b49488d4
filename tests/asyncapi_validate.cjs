// Validate an AsyncAPI document with the official parser (@asyncapi/parser: the AsyncAPI JSON
// schema of @asyncapi/specs plus its Spectral rules). Prints the diagnostics as JSON.
// Usage: node tests/asyncapi_validate.cjs NODE_PREFIX DOCUMENT
const { createRequire } = require("node:module");
const { readFileSync } = require("node:fs");
const path = require("node:path");

const [prefix, file] = process.argv.slice(2);
const load = createRequire(path.resolve(prefix, "node_modules") + "/");
const { Parser } = load("@asyncapi/parser");
const specs = load("@asyncapi/specs/package.json");
const parserVersion = load("@asyncapi/parser/package.json").version;

(async () => {
  const parser = new Parser();
  const diagnostics = await parser.validate(readFileSync(file, "utf8"), { source: file });
  const out = diagnostics.map((d) => ({
    severity: ["error", "warning", "info", "hint"][d.severity],
    code: d.code,
    message: d.message,
    path: d.path.join("/"),
  }));
  console.log(JSON.stringify({ parser: parserVersion, specs: specs.version, diagnostics: out }));
})().catch((err) => {
  console.error(err);
  process.exit(2);
});
