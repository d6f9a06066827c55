// Parses every ```mermaid block of the given Markdown files with the Mermaid
// library itself (mermaid.parse, the parser the renderers use), under Node
// with a jsdom window (Mermaid's sanitizer needs a DOM; no browser).
//
//   node check-diagrams.mjs <tools dir with node_modules> <file.md>...
//
// Prints one line per diagram; exits 1 if any fails to parse, or if the
// files hold no diagram at all. Run through check-diagrams.sh, which
// installs the tools.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [toolsDir, ...files] = process.argv.slice(2);
if (!toolsDir || files.length === 0) {
  console.error('usage: node check-diagrams.mjs <tools dir> <file.md>...');
  process.exit(2);
}
const require = createRequire(join(toolsDir, 'package.json'));

const { JSDOM } = require('jsdom');
const dom = new JSDOM('<!doctype html><html><body></body></html>', { pretendToBeVisual: true });
globalThis.window = dom.window;
globalThis.document = dom.window.document;
for (const name of ['Element', 'HTMLElement', 'SVGElement', 'Node', 'DOMParser']) {
  if (!(name in globalThis)) globalThis[name] = dom.window[name];
}
const { default: mermaid } = await import(pathToFileURL(require.resolve('mermaid')).href);
mermaid.initialize({ startOnLoad: false, securityLevel: 'strict' });
const version = require('mermaid/package.json').version;

/** The ```mermaid blocks of a Markdown text: { line, source }. */
function mermaidBlocks(text) {
  const blocks = [];
  const lines = text.split('\n');
  let current = null;
  lines.forEach((line, index) => {
    if (current === null) {
      if (/^\s*```mermaid\s*$/.test(line)) current = { line: index + 2, body: [] };
    } else if (/^\s*```\s*$/.test(line)) {
      blocks.push({ line: current.line, source: current.body.join('\n') });
      current = null;
    } else {
      current.body.push(line);
    }
  });
  if (current !== null) blocks.push({ line: current.line, source: null });
  return blocks;
}

let checked = 0;
let failed = 0;
for (const file of files) {
  for (const block of mermaidBlocks(readFileSync(file, 'utf8'))) {
    checked += 1;
    const where = `${file}:${block.line}`;
    if (block.source === null) {
      failed += 1;
      console.log(`FAIL ${where}: the mermaid block is never closed`);
      continue;
    }
    const id = /%%\s*diagram:\s*(\S+)/.exec(block.source)?.[1] ?? '(no id)';
    try {
      const result = await mermaid.parse(block.source);
      console.log(`ok   ${where} ${result.diagramType} ${id}`);
    } catch (error) {
      failed += 1;
      const message = String(error?.message ?? error).split('\n').slice(0, 4).join('\n     ');
      console.log(`FAIL ${where} ${id}: ${message}`);
    }
  }
}
console.log(`mermaid ${version}: ${checked - failed} passed, ${failed} failed`);
if (checked === 0) {
  console.error('no mermaid block found');
  process.exit(1);
}
process.exit(failed === 0 ? 0 : 1);
