// bench/SOAK.md from scripts/soak's results: the figures (summarize) and the page (renderSoak).

const fmt = (x, d = 0) => (Number.isFinite(x) ? x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }) : '–');
const mib = (kib) => kib / 1024;

function median(values) {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (!v.length) return NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** Least-squares slope of y over t (seconds), per hour; NaN with fewer than 3 points. */
function slopePerHour(points, key) {
  const p = points.filter((s) => Number.isFinite(s[key]));
  if (p.length < 3) return NaN;
  const n = p.length;
  const mt = p.reduce((a, s) => a + s.t, 0) / n, my = p.reduce((a, s) => a + s[key], 0) / n;
  let num = 0, den = 0;
  for (const s of p) { num += (s.t - mt) * (s[key] - my); den += (s.t - mt) ** 2; }
  return den > 0 ? (num / den) * 3600 : NaN;
}

const inPhase = (results, name) => results.samples.filter((s) => s.phase === name);
const maxOf = (samples, key) => Math.max(...samples.map((s) => s[key]).filter(Number.isFinite));

/** The soak's figures, from the samples and the client's and gateway's counters. */
export function summarize(results) {
  const base = inPhase(results, 'baseline'), settle = inPhase(results, 'settle'), steady = inPhase(results, 'steady');
  const idle = inPhase(results, 'idle');
  const all = results.samples;
  const c = results.client ?? {};
  const held = median(settle.map((s) => s.streams));
  const baseRss = median(base.map((s) => s.rssKiB)), rampRss = median(settle.map((s) => s.rssKiB));
  const half = steady.filter((s) => s.t >= (steady[0]?.t ?? 0) + ((steady.at(-1)?.t ?? 0) - (steady[0]?.t ?? 0)) / 2);
  const steadyS = steady.length ? steady.at(-1).t - steady[0].t : NaN;
  const cpuSteady = steady.length > 1 ? (steady.at(-1).cpuS - steady[0].cpuS) / steadyS : NaN;
  const errors = c.errors ?? {};
  const errorTotal = Object.values(errors).reduce((a, b) => a + b, 0);
  const byStatus = results.gatewayMetrics?.requestsByStatus ?? {};
  const gatewayNon2xx = Object.entries(byStatus).filter(([s]) => !/^2/.test(s)).reduce((n, [, v]) => n + v, 0);
  const fdsBase = median(base.map((s) => s.fds));
  const fdsEnd = idle.length ? idle.at(-1).fds : NaN;
  // Upstream keep-alive connections in libcurl's cache (bounded by CURLMOPT_MAXCONNECTS per
  // worker) are not streams; the rest must come back to what it was when idle.
  const kinds = results.fdKinds ?? {};
  const count = (label, re) => Object.entries(kinds[label]?.byKind ?? {}).filter(([k]) => re.test(k)).reduce((n, [, v]) => n + v, 0);
  const upstreamRe = /^tcp to the (modern upstream|JWKS server)|^tcp to server-everything/;
  const clientRe = /^tcp on the gateway port \(clients\) (?!LISTEN)/;
  const others = (label) => (kinds[label]?.total ?? NaN) - count(label, upstreamRe);
  return {
    streamsTarget: results.opt.streams,
    peakStreams: Math.max(c.peakStreams ?? 0, maxOf(all, 'streams')),
    peakStreamsGateway: maxOf(all, 'gwStreams'),
    streamsHeldAfterRamp: held,
    minStreamsSteady: Math.min(...steady.map((s) => s.streams).filter(Number.isFinite)),
    rampS: (results.ramp?.ms ?? NaN) / 1000,
    rss: {
      baselineKiB: baseRss, afterRampKiB: rampRss,
      steadyStartKiB: steady[0]?.rssKiB, steadyEndKiB: steady.at(-1)?.rssKiB, steadyMaxKiB: maxOf(steady, 'rssKiB'),
      endKiB: idle.at(-1)?.rssKiB, hwmKiB: maxOf(all, 'hwmKiB'),
      perStreamKiB: held > 0 ? (rampRss - baseRss) / held : NaN,
      slopeMiBPerHour: slopePerHour(steady, 'rssKiB') / 1024,
      slopeSecondHalfMiBPerHour: slopePerHour(half, 'rssKiB') / 1024,
    },
    fds: { baseline: fdsBase, afterRamp: median(settle.map((s) => s.fds)), peak: maxOf(all, 'fds'), end: fdsEnd,
           afterProbe: idle.at(-1)?.fdsAfterProbe,
           steadySlopePerHour: slopePerHour(steady, 'fds'),
           endClientSockets: count('after the drain', clientRe),
           endUpstreamIdle: count('after the drain', upstreamRe),
           endUpstreamCloseWait: count('after the drain', /^tcp to .* CLOSE_WAIT$/),
           afterProbeUpstreamIdle: count('after the drain + 8 requests', upstreamRe),
           afterProbeCloseWait: count('after the drain + 8 requests', /^tcp to .* CLOSE_WAIT$/),
           returned: count('after the drain', clientRe) === 0 && others('after the drain') <= others('idle (baseline)') + 2 },
    threads: { baseline: median(base.map((s) => s.threads)), end: idle.at(-1)?.threads },
    steadyS, cpuCoresSteady: cpuSteady,
    requests: c.requests ?? 0, served: c.served ?? {}, achievedRps: steadyS > 0 ? (c.requests ?? 0) / steadyS : NaN,
    skipped: c.skipped ?? 0, notSentAtCap: c.notSentAtCap ?? 0, latency: c.latencyAll ?? {},
    events: { total: c.events, listen: c.listenEvents, log: c.logEvents, progress: c.progressEvents, keepalives: c.keepalives },
    streamsOpened: c.streamsOpened, streamsClosed: c.streamsClosed, replaced: c.replaced,
    errors, errorTotal, errorSamples: c.samples ?? {},
    gatewayRequestsByStatus: byStatus, gatewayNon2xx,
    gatewayActiveStreamsEnd: results.gatewayMetrics?.activeStreams, gatewayActiveConnectionsEnd: results.gatewayMetrics?.activeConnections,
    load: { before: results.machine.loadBefore?.[0], steadyMedian: median(steady.map((s) => s.load1)), steadyMax: maxOf(steady, 'load1'),
            after: results.machine.loadAfter?.[0] },
    upstreamRssKiB: { start: base[0]?.upstreamRssKiB, end: steady.at(-1)?.upstreamRssKiB },
    clientRssKiBEnd: steady.at(-1)?.clientRssKiB,
  };
}

export function renderSoak(results, { jsonPath }) {
  const s = results.summary ?? summarize(results);
  const o = [];
  const w = (x = '') => o.push(x);
  const m = results.machine, opt = results.opt;
  w('# mcpgate soak results');
  w();
  w(`Generated by \`scripts/soak --minutes ${opt.minutes} --streams ${opt.streams} --rps ${opt.rps} --churn ${opt.churnPerMin}${opt.heap ? ' --heap' : ''}\`, ` +
    `started ${results.startedAt}, took ${fmt(results.elapsedS / 60, 1)} min. A benchmark, not a test: ` +
    `the figures are this one run's. Raw samples: [\`${jsonPath}\`](${jsonPath}).`);
  if (opt.minutes < 5) w('\n> **Short run** (a validation of the script): the steady state is too short for the growth figures to mean much.');
  for (const n of results.notes) w(`\n> ${n}`);
  w();
  w('## Figures');
  w();
  w('| what | figure | target |');
  w('| --- | --- | --- |');
  w(`| peak concurrent streams held | **${fmt(s.peakStreams)}** (gateway's \`mcpgate_active_streams\`: ${fmt(s.peakStreamsGateway)}); ${fmt(s.streamsHeldAfterRamp)} after the ramp (${fmt(s.rampS, 1)} s), at least ${fmt(s.minStreamsSteady)} throughout the steady state | ${fmt(s.streamsTarget)} |`);
  w(`| memory per stream | **${fmt(s.rss.perStreamKiB, 1)} KiB** (RSS after the ramp − idle RSS, ÷ streams) | |`);
  w(`| requests served | **${fmt(s.requests)}** in ${fmt(s.steadyS / 60, 1)} min (${fmt(s.achievedRps, 1)} req/s); latency p50 ${fmt(s.latency.p50)} ms, p99 ${fmt(s.latency.p99)} ms, p99.9 ${fmt(s.latency['p99.9'])} ms, max ${fmt(s.latency.max)} ms | ${fmt(opt.rps)} req/s |`);
  w(`| errors | **${fmt(s.errorTotal)}**${s.errorTotal ? ` (${Object.entries(s.errors).map(([k, v]) => `${k}: ${v}`).join(', ')})` : ''}; gateway non-2xx answers: ${fmt(s.gatewayNon2xx)} | 0 |`);
  w(`| RSS idle → after ramp → steady start → steady end → after drain | ${fmt(mib(s.rss.baselineKiB), 1)} → ${fmt(mib(s.rss.afterRampKiB), 1)} → ${fmt(mib(s.rss.steadyStartKiB), 1)} → ${fmt(mib(s.rss.steadyEndKiB), 1)} → ${fmt(mib(s.rss.endKiB), 1)} MiB (peak ${fmt(mib(s.rss.hwmKiB), 1)} MiB) | |`);
  w(`| RSS growth over the steady state (least squares) | **${fmt(s.rss.slopeMiBPerHour, 1)} MiB/h** over all of it; ${fmt(s.rss.slopeSecondHalfMiBPerHour, 1)} MiB/h over its second half | flat |`);
  w(`| open descriptors idle / after ramp / peak / after drain | ${fmt(s.fds.baseline)} / ${fmt(s.fds.afterRamp)} / ${fmt(s.fds.peak)} / **${fmt(s.fds.end)}**: ` +
    `${s.fds.returned ? 'back to the baseline' : '**NOT** back to the baseline'} but for ${fmt(s.fds.endUpstreamIdle)} idle upstream connections in libcurl's cache ` +
    `(${fmt(s.fds.endUpstreamCloseWait)} of them already closed by the upstream, CLOSE_WAIT), and ${fmt(s.fds.endClientSockets)} client sockets; ` +
    `after 8 more requests ${fmt(s.fds.afterProbe)} (${fmt(s.fds.afterProbeUpstreamIdle)} upstream, ${fmt(s.fds.afterProbeCloseWait)} CLOSE_WAIT); steady-state slope ${fmt(s.fds.steadySlopePerHour, 0)}/h | back to the baseline |`);
  w(`| gateway after drain | \`mcpgate_active_streams\` ${fmt(s.gatewayActiveStreamsEnd)}, \`mcpgate_active_connections\` ${fmt(s.gatewayActiveConnectionsEnd)}, threads ${fmt(s.threads.end)} (idle: ${fmt(s.threads.baseline)}) | 0, 0 |`);
  w(`| SIGTERM at the end | exit ${results.shutdown?.code ?? '–'} after ${fmt(results.shutdown?.ms)} ms | exit 0 |`);
  w(`| gateway CPU during the steady state | ${fmt(s.cpuCoresSteady * 100, 1)} % of one core | |`);
  w(`| load average (1 min) | ${fmt(s.load.before, 2)} before, median ${fmt(s.load.steadyMedian, 2)} (max ${fmt(s.load.steadyMax, 2)}) in the steady state, ${fmt(s.load.after, 2)} after | |`);
  w();
  w('## Traffic');
  w();
  w(`- Streams opened ${fmt(s.streamsOpened)}, closed by the client ${fmt(s.streamsClosed)} (churn and drain), replaced after an unexpected end ${fmt(s.replaced)}.`);
  w(`- Events the clients received through the gateway: ${fmt(s.events.total)} (resources/updated on listen streams ${fmt(s.events.listen)}, ` +
    `notifications/message on live GET streams ${fmt(s.events.log)}; keep-alive comments ${fmt(s.events.keepalives)}); ` +
    `progress notifications on slow tool calls ${fmt(s.events.progress)}.`);
  w(`- Requests by kind: ${Object.entries(s.served).map(([k, v]) => `${k} ${fmt(v)}`).join(', ')}; not sent ${fmt(s.skipped)} (a session request whose session churn had just closed, or no session held)` +
    `${s.notSentAtCap ? `; **not sent because the load generator had 256 requests in flight: ${fmt(s.notSentAtCap)}** (answers slower than 256 ÷ rps: see the load average)` : ''}.`);
  w(`- Gateway's \`mcpgate_requests_total\` by status: ${Object.entries(s.gatewayRequestsByStatus).map(([k, v]) => `${k}: ${fmt(v)}`).join(', ')}.`);
  const up = s.upstreamRssKiB;
  if (up.start && up.end) {
    w(`- Upstream RSS (context, not the gateway's): ${Object.keys(up.end).map((k) => `${k} ${fmt(mib(up.start[k]), 0)} → ${fmt(mib(up.end[k]), 0)} MiB`).join(', ')}; soak client ${fmt(mib(s.clientRssKiBEnd), 0)} MiB.`);
  }
  if (s.errorTotal) {
    w();
    w('### Errors, first messages of each kind');
    w();
    for (const [k, v] of Object.entries(s.errorSamples)) w(`- \`${k}\`: ${v.map((x) => `\`${x.replaceAll('`', "'")}\``).join('; ')}`);
  }
  if (results.gatewayLog?.warnings) {
    w();
    w(`Gateway log: ${results.gatewayLog.warnings} warning/error lines of ${results.gatewayLog.lines}; first: ${results.gatewayLog.first.map((l) => `\`${l}\``).join('; ')}`);
  }
  if (results.heap?.length) {
    w();
    w('### The gateway\'s heap (glibc `malloc_stats()` through gdb, `--heap`)');
    w();
    w('| when | t (s) | RSS MiB | heap in use MiB | heap from the system MiB | gdb pause ms |');
    w('| --- | ---: | ---: | ---: | ---: | ---: |');
    for (const h of results.heap) {
      w(`| ${h.label} | ${fmt(h.t)} | ${fmt(mib(h.rssKiB), 1)} | ${h.failure ? h.failure : fmt(h.inUseBytes / 1048576, 2)} | ${fmt(h.systemBytes / 1048576, 2)} | ${fmt(h.pauseMs)} |`);
    }
    const st = results.heap.filter((h) => /^steady|after the ramp/.test(h.label) && Number.isFinite(h.inUseBytes));
    if (st.length >= 2) {
      const hours = (st.at(-1).t - st[0].t) / 3600;
      w();
      w(`From the ramp's end to the steady state's end: heap in use ${fmt((st.at(-1).inUseBytes - st[0].inUseBytes) / 1048576 / hours, 1)} MiB/h, ` +
        `heap taken from the system ${fmt((st.at(-1).systemBytes - st[0].systemBytes) / 1048576 / hours, 1)} MiB/h, RSS ${fmt(mib(st.at(-1).rssKiB - st[0].rssKiB) / hours, 1)} MiB/h.`);
    }
  }
  if (results.fdKinds) {
    w();
    w('### The gateway\'s descriptors by kind');
    w();
    const labels = Object.keys(results.fdKinds);
    const kinds = [...new Set(labels.flatMap((l) => Object.keys(results.fdKinds[l].byKind)))].sort();
    w(`| kind | ${labels.join(' | ')} |`);
    w(`| --- |${labels.map(() => ' ---: |').join('')}`);
    for (const k of kinds) w(`| ${k} | ${labels.map((l) => fmt(results.fdKinds[l].byKind[k] ?? 0)).join(' | ')} |`);
    w(`| **total** | ${labels.map((l) => fmt(results.fdKinds[l].total)).join(' | ')} |`);
  }
  w();
  w('## Method');
  w();
  w(`- mcpgate (Release, \`${m.mcpgateBin}\`, ${m.mcpgateCommit}), \`server.workers: ${opt.workers}\`, \`log.level: warn\`, no access log; two JWT routes (RS256, 1000 tokens in rotation, each request and stream its own): ` +
    '`/modern` → a 2026-07-28 server built on `@modelcontextprotocol/server` ' + `${m.sdk2} (\`createMcpHandler\`, stateless) and \`/everything\` → \`@modelcontextprotocol/server-everything\` ${m.everything} (Streamable HTTP, sessions), with \`filter_tools_list: true\` and a tool hidden by scope. All on 127.0.0.1; nothing pinned; everything run under \`nice\` ${m.nice}.`);
  w(`- Streams, one TCP connection each, split evenly: **2026-07-28 \`subscriptions/listen\`** on \`/modern\` (open once the acknowledgement arrives; the upstream publishes a \`notifications/resources/updated\` to every stream each ${opt.eventS} s and a keep-alive comment each 15 s; one silent for 45 s counts as stalled) and **2025-era GET streams on sessions** on \`/everything\` (initialize, initialized, GET; ${fmt(opt.liveShare * 100)} % of the sessions turn on server-everything's simulated logging, a message every 5 s; the others stay silent, as most real GET streams do). Closing one ends its connection; a session is DELETEd.`);
  w(`- Steady state: the streams held for ${opt.minutes} min while ${opt.churnPerMin} % of them per minute are closed and replaced, and ${opt.rps} req/s (open loop, keep-alive, at most 256 in flight): 40 % modern \`tools/call\` echo, 15 % modern \`tools/list\`, 30 % \`tools/call\` echo and 10 % filtered \`tools/list\` on held sessions, 5 % modern \`slow-progress\` (2 s, a progress event every 250 ms, streamed). Every answer is checked (status, result, the hidden tool absent).`);
  w(`- Sampled every ${opt.sampleS} s: the gateway's VmRSS / VmHWM / threads (\`/proc/<pid>/status\`), descriptors (\`/proc/<pid>/fd\`), CPU (\`/proc/<pid>/stat\`), \`/metrics\`, the load average. Memory per stream = (median RSS 15 s after the ramp − median idle RSS) ÷ streams held. Growth = least-squares slope of RSS over the steady-state samples. Drain: every stream closed, the clients gone, 30 s idle; then SIGTERM.`);
  w(`- Machine: ${m.cpu}, ${m.cores} cores (shared with other work), ${m.memGiB} GiB, kernel ${m.kernel}, Node ${m.node}, open-file limit ${m.nofile}.`);
  w();
  w('## Timeline (one sample a minute)');
  w();
  w('| t (s) | phase | streams | gateway streams | RSS MiB | fds | threads | requests | errors | p99 ms | load |');
  w('| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  let last = -Infinity, lastPhase = '';
  for (const x of results.samples) {
    if (x.t - last < 60 && x.phase === lastPhase && x !== results.samples.at(-1)) continue;
    last = x.t;
    lastPhase = x.phase;
    w(`| ${fmt(x.t)} | ${x.phase} | ${fmt(x.streams)} | ${fmt(x.gwStreams)} | ${fmt(mib(x.rssKiB), 1)} | ${fmt(x.fds)} | ${fmt(x.threads)} | ${fmt(x.requests)} | ${fmt(x.errors)} | ${fmt(x.p99, 1)} | ${fmt(x.load1, 2)} |`);
  }
  w();
  return `${o.join('\n')}\n`;
}
