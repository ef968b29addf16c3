// Shared pieces of the page tests: a signaling server to test against, a scripted doorbell peer
// (socket.io-client 4.x with the doorbell token), and a runner for browser.js.
'use strict';

const { spawn } = require('child_process');
const os = require('os');
const path = require('path');
const readline = require('readline');
const { io } = require('socket.io-client');

const ROOT = path.resolve(__dirname, '..', '..');
const TOKEN = 'page-test-doorbell-token-0123456789';

/**
 * Starts the server the page is tested against and resolves to { url, token, stop() }.
 * `lab: true`: the Python fixture in lab mode (no token needed to create a room);
 * `pollingOnly: true` with it: the fixture refuses WebSockets, as some proxies do.
 * Default: target/debug/doorbell server. With DOORBELL_SERVER_CMD set, that
 * command instead (run by sh, with DOORBELL_TOKEN in its environment, the token the test
 * doorbell presents); it must print its address on stdout or stderr: "http://127.0.0.1:PORT",
 * "https://127.0.0.1:PORT", or a bare "127.0.0.1:PORT" (taken as https).
 */
function startServer({ lab = false, pollingOnly = false } = {}) {
  // The lab flavour (anyone may create rooms) is the lab's Flask-SocketIO server fixture
  // serving web/; otherwise the real `doorbell server` (DOORBELL_SERVER_CMD, or the debug build).
  const defaultCmd =
    `exec "${path.join(ROOT, 'target', 'debug', 'doorbell')}" server --listen 127.0.0.1:0 ` +
    `--data-dir "${path.join(os.tmpdir(), `doorbell-e2e-${process.pid}`)}"`;
  const custom = lab ? null : process.env.DOORBELL_SERVER_CMD || defaultCmd;
  const child = custom
    ? // Its own process group, so stop() ends the command and not only the shell around it.
      spawn('sh', ['-c', custom], { cwd: ROOT, env: { ...process.env, DOORBELL_TOKEN: TOKEN }, detached: true })
    : spawn(
        'python3',
        [
          path.join(ROOT, 'tests', 'fixtures', 'lab_server.py'),
          '--port',
          '0',
          '--static',
          path.join(ROOT, 'web'),
          ...(pollingOnly ? ['--polling-only'] : []),
        ],
        { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] },
      );
  let stderr = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not start within 60 s; stderr:\n${stderr}`));
    }, 60000);
    const found = (url) => {
      clearTimeout(timer);
      resolve({
        url,
        token: TOKEN,
        stop: () =>
          new Promise((done) => {
            if (child.exitCode !== null) return done();
            child.once('exit', () => done());
            if (custom) {
              try {
                process.kill(-child.pid, 'SIGTERM');
              } catch (_) {
                child.kill('SIGTERM');
              }
            } else {
              child.kill('SIGTERM');
            }
          }),
      });
    };
    const watch = (stream, isStderr) => {
      readline.createInterface({ input: stream }).on('line', (line) => {
        if (isStderr) stderr += line + '\n';
        if (!custom) {
          const m = /^LISTENING (\d+)/.exec(line);
          if (m) found(`http://127.0.0.1:${m[1]}`);
        } else {
          // A URL, or a log line's `addr=127.0.0.1:PORT` (then https, as `doorbell server` is).
          // eslint-disable-next-line no-control-regex
          const plain = line.replace(/\x1b\[[0-9;]*m/g, '');
          const m = /(https?:\/\/)?(127\.0\.0\.1|\[::1\]):(\d+)/.exec(plain);
          if (m) found(`${m[1] || 'https://'}${m[2]}:${m[3]}`);
        }
      });
    };
    watch(child.stdout, false);
    watch(child.stderr, true);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}; stderr:\n${stderr}`));
    });
  });
}

/** A socket.io 4.x client playing the doorbell: records every event it receives. */
class DoorbellPeer {
  constructor(serverUrl, { token } = {}) {
    this.events = [];
    this.waiters = [];
    this.socket = io(serverUrl, {
      auth: token ? { token } : undefined,
      transports: ['websocket'],
      forceNew: true,
      reconnection: false,
      rejectUnauthorized: false,
    });
    this.socket.onAny((name, payload) => {
      this.events.push({ name, payload });
      this.waiters = this.waiters.filter((w) => {
        if (w.name !== name) return true;
        clearTimeout(w.timer);
        w.resolve(payload);
        return false;
      });
    });
  }

  /** Resolves with the payload of the first `name` event (already received or next). */
  next(name, timeoutMs = 20000) {
    const seen = this.events.find((e) => e.name === name);
    if (seen) return Promise.resolve(seen.payload);
    return new Promise((resolve, reject) => {
      const waiter = { name, resolve };
      waiter.timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`no ${name} within ${timeoutMs} ms; got ${this.events.map((e) => e.name).join(', ')}`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  all(name) {
    return this.events.filter((e) => e.name === name).map((e) => e.payload);
  }

  emit(name, payload) {
    this.socket.emit(name, payload);
  }

  close() {
    this.socket.disconnect();
  }
}

/** A room name like the agent's: 22 URL-safe characters. */
function newRoom() {
  return require('crypto').randomBytes(16).toString('base64url').slice(0, 22);
}

/**
 * Runs browser.js with `args` and resolves with its result line (and every line it printed).
 * `onLine(obj, child)` sees each JSON line as it arrives (for --hold scenarios).
 */
function runBrowser(args, { onLine, onSpawn } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(__dirname, 'browser.js'), ...args], {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    if (onSpawn) onSpawn(child);
    const lines = [];
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      let obj;
      try {
        obj = JSON.parse(line);
      } catch (_) {
        return reject(new Error(`browser.js printed a non-JSON line: ${line}`));
      }
      lines.push(obj);
      if (onLine) onLine(obj, child);
    });
    child.once('exit', (code) => {
      const result = lines.find((l) => l.event === 'result');
      if (code !== 0 || !result) {
        reject(new Error(`browser.js exited ${code} without a result; stderr:\n${stderr}`));
      } else {
        resolve({ result, lines, stderr });
      }
    });
    if (!onLine) child.stdin.end();
  });
}

// Held browsers still running; a failed test must not leave one keeping the run alive.
const held = new Set();

/** Ends every held browser.js (call from the test file's `after`). */
function stopHeldBrowsers() {
  for (const c of held) c.kill('SIGTERM');
}

/**
 * browser.js in --hold mode, driven one stdin command at a time:
 *   const b = heldBrowser([url, '--answer']); await b.ready; await b.send('wait-state in-call');
 *   const { result } = await b.finish('hangup');
 */
function heldBrowser(args) {
  const queue = [];
  let waiting = null;
  let readyResolve;
  const ready = new Promise((r) => (readyResolve = r));
  let child;
  const done = runBrowser([...args, '--hold'], {
    onSpawn: (c) => {
      child = c;
      held.add(c);
      c.once('exit', () => held.delete(c));
    },
    onLine: (line) => {
      if (line.event === 'holding') return readyResolve(line);
      if (line.event === 'result') return;
      if (waiting) {
        const w = waiting;
        waiting = null;
        w(line);
      } else {
        queue.push(line);
      }
    },
  });
  // A harness failure before "holding" must not leave `ready` pending forever.
  done.catch((err) => readyResolve(Promise.reject(err)));
  return {
    ready,
    send(command) {
      child.stdin.write(command + '\n');
      if (queue.length) return Promise.resolve(queue.shift());
      return new Promise((r) => (waiting = r));
    },
    finish(command) {
      if (command) child.stdin.write(command + '\n');
      child.stdin.end();
      return done;
    },
  };
}

module.exports = { startServer, DoorbellPeer, newRoom, runBrowser, heldBrowser, stopHeldBrowsers, ROOT };
