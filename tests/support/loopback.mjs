// Preload (`node --import <abs>/tests/support/loopback.mjs ...`) that forces every
// TCP net.Server.listen() without an explicit host, or with a wildcard host
// (0.0.0.0, ::, [::]), onto 127.0.0.1. Test upstreams such as
// @modelcontextprotocol/server-everything call `app.listen(PORT)`, which would
// otherwise listen on all interfaces; project rule: every test server binds to
// loopback only. Unix-socket paths and handles are left untouched.
//
// With MCPGATE_TEST_PARENT_WATCHDOG=1 in the environment (the test harness sets
// it) the process also exits once its parent is gone (e.g. the test runner was
// SIGKILLed), so no test server outlives its test. Without it (scripts that
// background a demo server on purpose) nothing else changes.
import net from 'node:net';

const LOOPBACK = '127.0.0.1';
const WILDCARDS = new Set(['', '0.0.0.0', '::', '[::]', '::0']);

function isPortLike(v) {
  if (typeof v === 'number') return true;
  return typeof v === 'string' && v.trim() !== '' && Number.isInteger(Number(v));
}

const originalListen = net.Server.prototype.listen;

net.Server.prototype.listen = function patchedListen(...args) {
  const first = args[0];
  if (first === undefined || first === null || typeof first === 'function') {
    // listen() / listen(cb): random port on all interfaces -> loopback.
    return originalListen.call(this, 0, LOOPBACK, ...args.filter((a) => typeof a === 'function'));
  }
  if (isPortLike(first)) {
    if (typeof args[1] === 'string') {
      if (WILDCARDS.has(args[1])) args[1] = LOOPBACK;
    } else {
      args.splice(1, 0, LOOPBACK);
    }
    return originalListen.apply(this, args);
  }
  if (typeof first === 'object' && !Array.isArray(first)) {
    const isHandle = '_handle' in first || 'fd' in first;
    const isPath = typeof first.path === 'string';
    if (!isHandle && !isPath && (first.host === undefined || WILDCARDS.has(String(first.host)))) {
      args[0] = { ...first, host: LOOPBACK, ipv6Only: false };
    }
    return originalListen.apply(this, args);
  }
  return originalListen.apply(this, args);
};

const parentPid = process.ppid;
if (process.env.MCPGATE_TEST_PARENT_WATCHDOG === '1' && parentPid > 1) {
  setInterval(() => {
    if (process.ppid !== parentPid) process.exit(0);
  }, 1000).unref();
}
