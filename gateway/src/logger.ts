import pino, { type Logger } from 'pino';

/** The gateway's root logger: JSON lines on stdout, one per event, with a `time` in ms. */
export function createLogger(level: string): Logger {
  return pino({ level, base: { service: 'edge-embed' } });
}
