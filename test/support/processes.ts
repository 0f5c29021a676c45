/**
 * Real processes for tests: start the vdmap CLI as a child, wait for a line, run commands and capture their
 * output and exit code, and make sure nothing outlives the test.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CliPath = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const children = new Set<ChildProcess>();

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `vdmap ARGS` to completion. */
export function vdmap(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CliPath, ...args], { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => { stdout += chunk; });
    child.stderr.on('data', (chunk) => { stderr += chunk; });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`vdmap ${args.join(' ')} timed out\n${stdout}\n${stderr}`)); }, options.timeoutMs ?? 60_000);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code: code ?? -1, stdout, stderr }); });
  });
}

export interface Daemon {
  child: ChildProcess;
  output(): string;
  /** SIGINT (or the given signal), then waits for the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number>;
}

/** Starts `vdmap ARGS` in the background and resolves once its output matches `ready`. */
export function startDaemon(args: string[], ready: RegExp, options: { cwd?: string; timeoutMs?: number; nodeOptions?: string[] } = {}): Promise<Daemon> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(options.nodeOptions ?? []), CliPath, ...args], { cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let output = '';
    const exited = new Promise<number>((done) => child.on('close', (code) => { children.delete(child); done(code ?? -1); }));
    const daemon: Daemon = {
      child, output: () => output,
      stop: async (signal = 'SIGINT') => { child.kill(signal); return exited; },
    };
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`vdmap ${args.join(' ')} did not become ready:\n${output}`)); }, options.timeoutMs ?? 30_000);
    const watch = (chunk: Buffer) => {
      output += chunk;
      if (ready.test(output)) { clearTimeout(timer); resolve(daemon); }
    };
    child.stdout!.on('data', watch);
    child.stderr!.on('data', watch);
    void exited.then((code) => { clearTimeout(timer); reject(new Error(`vdmap ${args.join(' ')} exited with ${code}:\n${output}`)); });
  });
}

export function killAll(): void {
  for (const child of children) child.kill('SIGKILL');
}
