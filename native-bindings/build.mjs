// build.mjs: builds native-bindings/build/Release/vdmap_native.node; run by `npm install` / `npm ci` (package.json).
//
// Owns: checking the one system dependency (liburing), finding node-gyp, and running it with the Node headers
// passed explicitly. Does not know what the addon does (see src/addon.c).
//
// Invariants:
//   B1. A missing liburing prints exactly one line with the apt-get command and exits 1: nothing is compiled.
//   B2. --nodedir is derived from process.execPath (node at <prefix>/bin/node, headers at <prefix>/include/node);
//       npm's nodedir config is never relied on (npm is dropping it), and node-gyp never downloads headers.
//   B3. node-gyp comes from $npm_config_node_gyp (set by npm while running scripts), else `node-gyp` on PATH, else
//       the copy bundled with npm.
import { spawnSync } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const bindingsDirectory = dirname(fileURLToPath(import.meta.url));

function fail(line) {
  console.error(`vdmap: ${line}`);
  process.exit(1);
}

function liburingPresent() {
  if (existsSync('/usr/include/liburing.h')) return true;
  const probe = spawnSync('pkg-config', ['--exists', 'liburing'], { stdio: 'ignore' });
  return probe.status === 0;
}

function nodeHeadersDirectory() {
  const prefix = dirname(dirname(realpathSync(process.execPath)));
  const header = join(prefix, 'include', 'node', 'node_api.h');
  if (!existsSync(header)) {
    fail(`Node headers are missing (looked for ${header}): install the headers matching ${process.execPath}`);
  }
  return prefix;
}

function onPath(command) {
  for (const directory of (process.env.PATH ?? '').split(delimiter)) {
    if (directory !== '' && existsSync(join(directory, command))) return join(directory, command);
  }
  return undefined;
}

function bundledWithNpm() {
  const candidates = [];
  const npm = onPath('npm');
  if (npm !== undefined) candidates.push(join(dirname(dirname(realpathSync(npm))), 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  const root = spawnSync('npm', ['root', '-g'], { encoding: 'utf8' });
  if (root.status === 0) candidates.push(join(root.stdout.trim(), 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  return candidates.find((candidate) => existsSync(candidate));
}

/** The command that runs node-gyp: [executable, ...leading arguments]. */
function nodeGypCommand() {
  const located = process.env.npm_config_node_gyp || onPath('node-gyp') || bundledWithNpm();
  if (located === undefined) fail('node-gyp was not found: install npm (it bundles node-gyp) or run `npm install -g node-gyp`');
  return located.endsWith('.js') ? [process.execPath, located] : [located];
}

if (!liburingPresent()) fail('liburing is missing: apt-get install -y liburing-dev');
const nodedir = nodeHeadersDirectory();
const [executable, ...leading] = nodeGypCommand();
const build = spawnSync(executable, [...leading, 'rebuild', `--nodedir=${nodedir}`], {
  cwd: bindingsDirectory,
  stdio: 'inherit',
});
if (build.status !== 0) fail(`node-gyp rebuild failed (exit ${build.status ?? build.signal}); see the compiler output above`);
