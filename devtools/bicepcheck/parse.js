// Syntax check of Bicep files with tree-sitter-bicep, for devtools/bicepcheck (no Bicep compiler
// can be installed here). Usage: node parse.js FILE... with tree-sitter and tree-sitter-bicep on
// NODE_PATH. Prints one JSON object: {"files":[{"file","problems":[{"line","column","kind","text"}]}]}
// where kind is ERROR (text the parser could not place) or MISSING (a token the parser had to
// assume, e.g. a closing brace); line and column count from 1. Exit status 2 on usage or I/O errors.
'use strict';

const fs = require('fs');
const Parser = require('tree-sitter');
const Bicep = require('tree-sitter-bicep');

// tree-sitter-bicep 1.1.0, the newest on npm, predates Bicep's `extension` statement (which
// replaced `import`/`provider` for extensions such as microsoftGraphV1) and parses it as an
// error. A well-formed one-line extension statement is blanked out before parsing, character for
// character so that every other position stays the same; anything else starting with `extension`
// is left for the parser to report.
const identifier = "[A-Za-z_][A-Za-z0-9_]*";
const extensionStatement = new RegExp(
  "^\\s*extension\\s+(?:" + identifier + "|'[^'\\\\]*')" +
  "(?:\\s+with\\s+\\{[^{}]*\\})?" +
  "(?:\\s+as\\s+" + identifier + ")?" +
  "\\s*(?://.*)?$"
);

function maskExtensionStatements(source) {
  return source
    .split('\n')
    .map((line) => {
      const body = line.endsWith('\r') ? line.slice(0, -1) : line;
      return extensionStatement.test(body) ? line.replace(/[^\r]/g, ' ') : line;
    })
    .join('\n');
}

function snippet(text) {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length > 60 ? oneLine.slice(0, 57) + '...' : oneLine;
}

function problemsOf(tree) {
  const problems = [];
  const visit = (node) => {
    if (node.type === 'ERROR') {
      problems.push({
        line: node.startPosition.row + 1,
        column: node.startPosition.column + 1,
        kind: 'ERROR',
        text: snippet(node.text),
      });
    } else if (node.isMissing) {
      problems.push({
        line: node.startPosition.row + 1,
        column: node.startPosition.column + 1,
        kind: 'MISSING',
        text: node.type,
      });
    }
    for (const child of node.children) {
      visit(child);
    }
  };
  visit(tree.rootNode);
  if (tree.rootNode.hasError && problems.length === 0) {
    problems.push({ line: 1, column: 1, kind: 'ERROR', text: 'tree-sitter reports an error it does not locate' });
  }
  return problems;
}

function main(files) {
  if (files.length === 0) {
    process.stderr.write('usage: node parse.js FILE.bicep...\n');
    return 2;
  }
  const parser = new Parser();
  parser.setLanguage(Bicep);
  const result = { files: [] };
  for (const file of files) {
    let source;
    try {
      source = fs.readFileSync(file, 'utf8');
    } catch (err) {
      process.stderr.write(`${file}: ${err.message}\n`);
      return 2;
    }
    const tree = parser.parse(maskExtensionStatements(source));
    result.files.push({ file, problems: problemsOf(tree) });
  }
  process.stdout.write(JSON.stringify(result) + '\n');
  return 0;
}

process.exitCode = main(process.argv.slice(2));
