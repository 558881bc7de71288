// build.mjs: the two script bundles of dist/ (web/build.sh runs it after npm ci).
//   dist/app.js      src/main.js: both pages, the editor (CodeMirror 6)
//   dist/preview.js  src/preview-main.js: the preview's libraries, loaded by the
//                    note page after the editor is on screen (note-page.js)
// Through esbuild's API rather than its command line for one plugin, below.
import * as esbuild from 'esbuild';
import { readFile } from 'node:fs/promises';

// @codemirror/commands creates an Intl.Segmenter for words when it loads, for
// one use: moving by subword over CJK text (moveBySubword, reached only through
// the cursorSubword*/selectSubword* commands, which the page's keymaps do not
// bind). Creating it loads ICU's word-break data: about 12 ms of every page
// open in a new Chromium renderer. Here it is created at its first use instead;
// what it does is the same. The build fails if the statement is not found (a
// new version of the package), so the saving cannot go unnoticed.
const lazySegmenter = {
  name: 'lazy-segmenter',
  setup(build) {
    build.onLoad({ filter: /[\\/]@codemirror[\\/]commands[\\/]dist[\\/]index\.js$/ }, async (args) => {
      const src = await readFile(args.path, 'utf8');
      const eager = /const segmenter = typeof Intl != "undefined" && Intl\.Segmenter \?\s*\/\*@__PURE__\*\/new \(Intl\.Segmenter\)\(undefined, \{ granularity: "word" \}\) : null;/;
      if (!eager.test(src)) throw new Error(`${args.path}: the eager Intl.Segmenter is not where build.mjs expects it`);
      const lazy = 'const segmenter = typeof Intl != "undefined" && Intl.Segmenter ? {\n'
        + '    segment(s) { return (this.s || (this.s = new Intl.Segmenter(undefined, { granularity: "word" }))).segment(s); }\n'
        + '} : null;';
      return { contents: src.replace(eager, lazy), loader: 'js' };
    });
  },
};

const common = {
  bundle: true, minify: true, logLevel: 'warning', legalComments: 'eof', charset: 'ascii',
  format: 'iife', target: 'es2020',
};
await esbuild.build({ ...common, entryPoints: ['src/main.js'], outfile: 'dist/app.js', plugins: [lazySegmenter] });
await esbuild.build({ ...common, entryPoints: ['src/preview-main.js'], outfile: 'dist/preview.js' });
