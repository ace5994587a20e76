import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { RESULTS_DIR } from '../../bench/lib/measure';
import { generate, loadReports } from '../../bench/report/generate';
import { partMarkdown, tableMarkdown } from '../../bench/report/markdown';
import { bestPeer, ratioToBestPeer } from '../../bench/report/model';
import { readPart } from '../../bench/report/parts';
import { readBlock } from '../../bench/report/readme';
import { chartSvg, partCharts } from '../../bench/report/svg';

/**
 * bench/report.ts: the tables (medians, best peer, ratio), the SVG charts (well-formed, one bar per library, Warren
 * highlighted) and README.md's generated blocks, which must match the committed bench/results JSON.
 */

const ENVIRONMENT = {
  node: 'v20.0.0',
  platform: 'linux-x64',
  os: 'Linux 6.1.0',
  cpus: 4,
  cpuModel: 'Test CPU 3000',
  memoryGiB: 16,
  scale: 1,
  date: '2026-01-02T03:04:05.000Z',
  broker: { product: 'RabbitMQ', version: '3.13.7', platform: 'Erlang/OTP 26.2' },
  peers: { amqplib: '0.10.4', 'rabbitmq-client': '5.0.0', '@cloudamqp/amqp-client': '3.1.1' },
};

type Run = { scenario: string; lib: string; library: string; msgsPerSec?: number; cpuMsPer1k?: number; error?: string };

function run(scenario: string, lib: string, msgsPerSec: number, cpuMsPer1k: number): Run {
  return { scenario, lib, library: lib === 'cloudamqp' ? '@cloudamqp/amqp-client' : lib, msgsPerSec, cpuMsPer1k };
}

/** Two workloads, three rounds each; rabbitmq-client fails every consume round. */
function clientFixture(): object {
  return {
    environment: ENVIRONMENT,
    config: { url: 'amqp://broker.test:5673', repeat: 3 },
    scenarios: [
      { id: 'publish', title: 'Publish 1,000 × 256 B' },
      { id: 'consume', title: 'Consume 1,000 × 256 B' },
    ],
    runs: [
      // publish: medians by msgs/s are warren 1200 (cpu 2.0), amqplib 800 (cpu 5.0), cloudamqp 1000 (cpu 4.0).
      run('publish', 'amqplib', 700, 6),
      run('publish', 'amqplib', 800, 5),
      run('publish', 'amqplib', 900, 3),
      run('publish', 'cloudamqp', 1000, 4),
      run('publish', 'cloudamqp', 950, 4.5),
      run('publish', 'cloudamqp', 1100, 3.5),
      run('publish', 'rabbitmq-client', 600, 7),
      run('publish', 'rabbitmq-client', 500, 8),
      run('publish', 'rabbitmq-client', 650, 7.5),
      run('publish', 'warren', 1300, 1.5),
      run('publish', 'warren', 1200, 2),
      run('publish', 'warren', 1100, 2.5),
      // consume: one warren round failed (the other two: lower middle by msgs/s is 2000).
      run('consume', 'warren', 2000, 1),
      { scenario: 'consume', lib: 'warren', library: 'warren', error: 'boom' },
      run('consume', 'warren', 3000, 0.5),
      run('consume', 'amqplib', 1000, 4),
      run('consume', 'cloudamqp', 500, 6),
      { scenario: 'consume', lib: 'rabbitmq-client', library: 'rabbitmq-client', error: 'connection refused' },
    ],
  };
}

/** The names, in order, of the elements of a document that must be well-formed XML (throws where it is not). */
function parseXml(text: string): string[] {
  const body = text.replace(/^<\?xml[^>]*\?>\s*/, '');
  const tag = /<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+="[^"<&]*(?:&(?:amp|lt|gt|quot|apos);[^"<&]*)*")*)\s*(\/?)>/g;
  const stack: string[] = [];
  const names: string[] = [];
  let roots = 0;
  let at = 0;
  for (let m = tag.exec(body); m !== null; m = tag.exec(body)) {
    const between = body.slice(at, m.index);
    if (/[<>]|&(?!(?:amp|lt|gt|quot|apos|#\d+);)/.test(between)) throw new Error(`bad text: ${between}`);
    if (stack.length === 0 && between.trim() !== '') throw new Error(`text outside the root: ${between}`);
    const [, closing, name, , selfClosing] = m;
    if (closing) {
      if (stack.pop() !== name) throw new Error(`</${name}> closes nothing open`);
    } else {
      if (stack.length === 0) roots++;
      names.push(name);
      if (!selfClosing) stack.push(name);
    }
    at = tag.lastIndex;
  }
  if (body.slice(at).trim() !== '') throw new Error(`unparsed: ${body.slice(at, at + 40)}`);
  if (stack.length > 0) throw new Error(`unclosed: ${stack.join(', ')}`);
  if (roots !== 1) throw new Error(`${roots} root elements`);
  return names;
}

/** The `<rect class="bar">` elements of a chart, each with its fill. */
function bars(svg: string): Array<{ fill: string; width: number }> {
  return [...svg.matchAll(/<rect class="bar"[^>]*width="([\d.]+)"[^>]*fill="(#[0-9a-f]{6})"/g)].map((m) => ({
    width: Number(m[1]),
    fill: m[2],
  }));
}

describe('bench report tables', () => {
  it('shows each library’s median run per workload, the CPU of that same run, and Warren’s ratio to the best peer', () => {
    const report = readPart('client', clientFixture());
    const [throughput, cpu] = report.tables;
    expect(throughput.rows.map((r) => [r.library, r.cells.map((c) => c?.value)])).toEqual([
      ['warren', [1200, 2000]],
      ['amqplib', [800, 1000]],
      ['@cloudamqp/amqp-client', [1000, 500]],
      ['rabbitmq-client', [600, undefined]],
    ]);
    // CPU comes from the run chosen by msgs/s, not the median of the CPU figures.
    expect(cpu.rows.find((r) => r.library === 'amqplib')?.cells[0]?.value).toBe(5);
    expect(bestPeer(throughput, 0)).toEqual({ library: '@cloudamqp/amqp-client', value: 1000 });
    expect(ratioToBestPeer(throughput, throughput.rows[0], 0)).toBeCloseTo(1.2);
    // Lower is better for CPU: the best peer is the lowest (cloudamqp 4.0), and Warren's 2.0 is 0.5× it.
    expect(bestPeer(cpu, 0)).toEqual({ library: '@cloudamqp/amqp-client', value: 4 });
    expect(ratioToBestPeer(cpu, cpu.rows[0], 0)).toBeCloseTo(0.5);
  });

  it('prints medians with units, the best peer in bold and a Warren / best peer row', () => {
    const report = readPart('client', clientFixture());
    const md = tableMarkdown(report.tables[0]);
    const lines = md.split('\n');
    expect(lines[0]).toBe('| library | publish, no confirms | consume + ack |');
    expect(lines).toContain('| warren | 1,200 | 2,000 |');
    expect(lines).toContain('| amqplib | 800 | **1,000** |');
    expect(lines).toContain('| @cloudamqp/amqp-client | **1,000** | 500 |');
    expect(lines).toContain('| rabbitmq-client | 600 | — |');
    expect(lines).toContain('| _warren / best peer_ | 1.20× | 2.00× |');
    expect(report.tables[0].title).toBe('Throughput, msgs/s (higher is better)');
  });

  it('names the machine, Node and broker, and says why a library has no figure', () => {
    const md = partMarkdown(readPart('client', clientFixture()));
    expect(md).toContain('- Machine: Test CPU 3000, 4 cores, 16 GiB RAM, Linux 6.1.0 (linux-x64)');
    expect(md).toContain('- Node: v20.0.0');
    expect(md).toContain('- Broker: RabbitMQ 3.13.7 (Erlang/OTP 26.2) at broker.test:5673');
    expect(md).toContain('- Date: 2026-01-02 03:04 UTC');
    expect(md).toContain('**rabbitmq-client, consume + ack: no result** (connection refused).');
  });

  it('never takes a reference row (Warren without Nest) as the best peer', () => {
    const nest = {
      environment: ENVIRONMENT,
      config: { repeat: 1, libraries: ['warren', 'nest-rmq', 'golevelup', 'floor-warren'] },
      scenarios: [{ id: 'rpc-seq', title: 'RPC: 10 sequential calls' }],
      runs: [
        { scenario: 'rpc-seq', lib: 'warren', library: 'Warren', perSec: 30, latency: { p50Ms: 0.3 } },
        { scenario: 'rpc-seq', lib: 'nest-rmq', library: 'Nest RMQ', perSec: 20, latency: { p50Ms: 0.5 } },
        { scenario: 'rpc-seq', lib: 'golevelup', library: 'golevelup', perSec: 25, latency: { p50Ms: 0.4 } },
        { scenario: 'rpc-seq', lib: 'floor-warren', library: 'floor', perSec: 40, latency: { p50Ms: 0.2 } },
      ],
    };
    const table = readPart('nest', nest).tables[0];
    expect(bestPeer(table, 0)).toEqual({ library: 'golevelup', value: 0.4 });
    expect(tableMarkdown(table).split('\n').slice(-2)).toEqual([
      '| _Warren / best peer_ | 0.75× |',
      '| _floor / best peer_ | 0.50× |',
    ]);
  });

  it('gives recovery resume times as the median over a scenario’s faults, with their range', () => {
    const fault = (publishResumeMs: number) => ({ publishResumeMs });
    const recovery = {
      environment: ENVIRONMENT,
      config: { messages: 100 },
      scenarios: [
        {
          id: 'kill',
          title: 'kill 3 times',
          results: [
            { lib: 'warren', library: 'warren', rejected: 0, lost: 0, faults: [12, 24.2, 6.8].map(fault) },
            {
              lib: 'rabbitmq-client',
              library: 'rabbitmq-client',
              rejected: 5,
              lost: 0,
              faults: [900, 1100].map(fault),
            },
          ],
        },
      ],
    };
    const [resume, rejected, lost] = readPart('recovery', recovery).tables;
    expect(tableMarkdown(resume).split('\n').slice(2)).toEqual([
      '| warren | 12 (7–24) |',
      '| rabbitmq-client | **1,000 (900–1,100)** |',
      '| _warren / best peer_ | 0.012× |',
    ]);
    expect(tableMarkdown(rejected).split('\n').at(-1)).toBe('| _warren / best peer_ | 0× |');
    // 0 lost against a best peer's 0: no ratio.
    expect(tableMarkdown(lost).split('\n').at(-1)).toBe('| _warren / best peer_ | — |');
  });
});

describe('bench report charts', () => {
  it('draws one well-formed SVG per workload, one bar per library, Warren in orange on a white background', () => {
    const report = readPart('client', clientFixture());
    const charts = partCharts(report);
    expect(charts.map((c) => c.file)).toEqual(['client-publish.svg', 'client-consume.svg']);
    const svg = charts[0].svg;
    const elements = parseXml(svg);
    expect(elements[0]).toBe('svg');
    expect(svg).toMatch(
      /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" width="\d+" height="\d+" viewBox="0 0 \d+ \d+"/,
    );
    expect(svg).toMatch(/<rect x="0.5" y="0.5" width="\d+" height="\d+" rx="6" fill="#ffffff"/);
    const drawn = bars(svg);
    expect(drawn).toHaveLength(4);
    expect(drawn[0].fill).toBe('#d9480f');
    expect(drawn.slice(1).every((b) => b.fill !== '#d9480f')).toBe(true);
    // Bars are proportional: warren 1200 is the longest, amqplib 800 two thirds of it.
    expect(drawn[1].width / drawn[0].width).toBeCloseTo(800 / 1200, 2);
    expect(svg).toContain('AMQP clients: Publish 1,000 × 256 B');
    expect(svg).toContain('throughput, msgs/s (higher is better)');
    expect(svg).toContain('>1,200</text>');
    expect(svg).toContain('warren / best peer (@cloudamqp/amqp-client): 1.20×');
  });

  it('escapes library names and marks a library without a result', () => {
    const fixture = clientFixture() as { runs: Run[] };
    for (const r of fixture.runs) if (r.lib === 'amqplib') r.library = 'a&b <c> "d"';
    const report = readPart('client', fixture);
    const consume = chartSvg(report, report.tables[0], 1);
    expect(() => parseXml(consume)).not.toThrow();
    expect(consume).toContain('a&amp;b &lt;c&gt; &quot;d&quot;');
    expect(consume).toContain('>no result</text>');
    expect(bars(consume).map((b) => b.width > 0)).toEqual([true, true, true, false]);
  });
});

describe('committed benchmark report', () => {
  const reports = loadReports(RESULTS_DIR);
  const generated = generate(reports);

  it('has a report for every committed part', () => {
    expect(reports.map((r) => r.part)).toEqual(['codec', 'client', 'recovery', 'nest']);
  });

  it('bench/results/*.md and *.svg are what bench/report.ts makes of the committed JSON', () => {
    for (const { file, content } of generated.files) {
      const committed = readFileSync(path.join(RESULTS_DIR, file), 'utf8');
      // Regenerate with: node -r @swc-node/register bench/report.ts
      expect({ file, content: committed }).toEqual({ file, content });
    }
  });

  it('README.md’s Benchmarks blocks are what bench/report.ts makes of the committed JSON', () => {
    const readme = readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8');
    for (const [name, content] of generated.readmeBlocks) {
      // Regenerate with: node -r @swc-node/register bench/report.ts --readme
      expect({ name, block: readBlock(readme, name) }).toEqual({ name, block: content });
    }
  });
});
