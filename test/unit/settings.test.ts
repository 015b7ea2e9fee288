import { describe, expect, it } from 'vitest';
import { loadSettings, modelSpec, SettingsError, settingsHelp } from '../../gateway/src/config/settings.ts';

const base = { MODELS: 'm' };

describe('settings', () => {
  it('has the documented defaults', () => {
    const s = loadSettings({ argv: [], env: base });
    expect(s).toMatchObject({
      MODELS: ['m'], MODEL_DEVICE: ['auto'], MODEL_CONFIG: 'configs/model_config.yaml', HOST: '127.0.0.1', PORT: 8000,
      MAX_BATCH_SIZE: 2048, MAX_TEXT_CHARS: 20_000, ENABLE_METRICS: true, ENABLE_WARMUP: true,
      ENABLE_BATCHING: true, EMBEDDING_CACHE_SIZE: 256, MAX_CONCURRENT: 0, MAX_QUEUE_SIZE: 128,
      WARMUP_BATCH_SIZE: 8, WARMUP_STEPS: 2, BATCH_WINDOW_MS: 2, BATCH_WINDOW_MAX_SIZE: 256, BATCH_WINDOW_MAX_TOKENS: 0,
    });
  });

  it('takes flags over env over .env over defaults', () => {
    const dotenv = 'PORT=7001\nMAX_QUEUE_SIZE=5\nMAX_CONCURRENT=3\nMODELS=from-file\n';
    const s = loadSettings({ argv: ['--port', '7003'], env: { PORT: '7002', MAX_QUEUE_SIZE: '6' }, dotenv });
    expect(s.PORT).toBe(7003);
    expect(s.MAX_QUEUE_SIZE).toBe(6);
    expect(s.MAX_CONCURRENT).toBe(3);
    expect(s.MODELS).toEqual(['from-file']);
    expect(s.MAX_BATCH_SIZE).toBe(2048);
  });

  it('never lets .env override a variable that is set, even to empty', () => {
    const s = loadSettings({ argv: [], env: { ...base, ENABLE_METRICS: '' }, dotenv: 'ENABLE_METRICS=1' });
    expect(s.ENABLE_METRICS).toBe(false);
  });

  it('maps the original flags --models, --device and --config', () => {
    const s = loadSettings({ argv: ['--models', 'a, b', '--device', 'cuda:1,cuda:0', '--config', 'c.yaml'], env: {} });
    expect(s.MODELS).toEqual(['a', 'b']);
    expect(s.MODEL_DEVICE).toEqual(['cuda:1', 'cuda:0']);
    expect(s.MODEL_CONFIG).toBe('c.yaml');
  });

  it('parses booleans in the usual spellings', () => {
    for (const [v, want] of [['1', true], ['true', true], ['on', true], ['0', false], ['no', false], ['OFF', false]] as const) {
      expect(loadSettings({ argv: [], env: { ...base, ENABLE_BATCHING: v } }).ENABLE_BATCHING).toBe(want);
    }
  });

  it.each([
    [{}, 'MODELS (--models): is required'],
    [{ ...base, MAX_BATCH_SIZE: 'many' }, 'MAX_BATCH_SIZE (--max-batch-size)'],
    [{ ...base, MAX_BATCH_SIZE: '0' }, 'MAX_BATCH_SIZE'],
    [{ ...base, PORT: '70000' }, 'PORT (--port)'],
    [{ ...base, MODEL_DEVICE: 'tpu' }, 'use auto, cpu, mps, cuda or cuda:N'],
    [{ ...base, ENABLE_METRICS: 'maybe' }, 'expected a boolean'],
    [{ ...base, LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
  ])('rejects %o with a message naming the setting', (env, message) => {
    expect(() => loadSettings({ argv: [], env })).toThrow(SettingsError);
    expect(() => loadSettings({ argv: [], env })).toThrow(message);
  });

  it('reads KEEP_ALIVE as seconds, in the forms Ollama takes, and refuses others', () => {
    const keep = (v: string) => loadSettings({ argv: [], env: { ...base, KEEP_ALIVE: v } }).KEEP_ALIVE;
    expect([keep('-1'), keep('0'), keep('90'), keep('30s'), keep('5m'), keep('1h')]).toEqual([-1, 0, 90, 30, 300, 3600]);
    for (const bad of ['-2', '5d', '-1m', 'soon', '1.5']) expect(() => keep(bad), bad).toThrow(/KEEP_ALIVE \(--keep-alive\)/);
  });

  it('preloads all of MODELS by default, none when empty, and refuses a name not in MODELS', () => {
    const preload = (v?: string) => loadSettings({ argv: [], env: { MODELS: 'a,b', ...(v === undefined ? {} : { PRELOAD: v }) } }).PRELOAD;
    expect(preload()).toEqual(['*']);
    expect(preload('')).toEqual([]);
    expect(preload('b')).toEqual(['b']);
    expect(() => preload('c')).toThrow(/PRELOAD \(--preload\): 'c' is not one of MODELS/);
  });

  it('takes name=folder entries in MODELS, known by their name everywhere else', () => {
    const s = loadSettings({ argv: [], env: { MODELS: 'a,mine=./my models/x', DEFAULT_MODEL: 'mine', PRELOAD: 'mine', MODEL_ALIASES: 'm=mine' } });
    expect(s.MODELS).toEqual(['a', 'mine=./my models/x']);
    expect(modelSpec(s.MODELS[1]!)).toEqual({ name: 'mine', path: './my models/x' });
    expect(modelSpec('a')).toEqual({ name: 'a' });
    expect(() => loadSettings({ argv: [], env: { MODELS: 'Bad Name=/x' } })).toThrow(/MODELS \(--models\): a catalog name, or name=folder/);
  });

  it('rejects unknown flags', () => {
    expect(() => loadSettings({ argv: ['--modle', 'x'], env: base })).toThrow(/Unknown option '--modle'/);
  });

  it('lists every setting with its default for --help', () => {
    const help = settingsHelp();
    expect(help).toContain('--embedding-cache-size');
    expect(help).toMatch(/--models\s+MODELS\s+default \(required\)/);
  });
});
