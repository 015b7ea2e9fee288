import { isUtf8 } from 'node:buffer';
import { PassThrough, type Readable } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../errors.ts';

/** Content-Encodings a request body may use; each gives a fresh decompressing stream. */
const DECODERS: Record<string, () => NodeJS.ReadWriteStream> = {
  gzip: createGunzip,
  'x-gzip': createGunzip,
  deflate: createInflate,
  br: createBrotliDecompress,
};

/**
 * Request bodies: decompression, then strict JSON. Everything a runner batch could choke on is
 * refused here, before the request joins a batch that other clients share: bytes that are not
 * UTF-8 (Fastify would silently turn them into U+FFFD), text with lone surrogates (valid JSON,
 * but not encodable for the runner), and `__proto__` keys (prototype poisoning). Each gets a
 * 400 that says which rule was broken and where, instead of a generic "not valid JSON". Object
 * fields set to null are dropped, so every route reads null as absent. JSON is the only body
 * type: Fastify's own text/plain parser would hand routes a string, refused as "not a JSON
 * object" with a 400, where a client that forgot its Content-Type needs to hear about the header.
 */
export function registerBodyParsing(app: FastifyInstance): void {
  app.addHook('preParsing', async (request, _reply, payload) => {
    const encoding = String(request.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
    if (encoding === 'identity' || encoding === '') return payload;
    const decoder = DECODERS[encoding];
    if (!decoder) {
      throw new ApiError('unsupported_media', `Content-Encoding '${encoding}' is not supported; send the body as is, or with gzip, deflate or br.`,
        { code: 'unsupported_content_encoding' });
    }
    return decompress(payload, decoder(), encoding);
  });

  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request, body, done) => {
    try {
      done(null, parseStrictJson(body as unknown as Buffer));
    } catch (err) {
      done(err as Error, undefined);
    }
  });
}

/**
 * The decompressed body. Fastify applies bodyLimit to what this stream yields, so a zip bomb
 * stops at MAX_REQUEST_BYTES; `receivedEncodedLength` lets it check Content-Length against the
 * bytes actually sent. A corrupt body ends the stream with a client error, not zlib's own.
 */
function decompress(payload: Readable, decoder: NodeJS.ReadWriteStream, encoding: string): Readable {
  const out = new PassThrough() as PassThrough & { receivedEncodedLength: number };
  out.receivedEncodedLength = 0;
  payload.on('data', (chunk: Buffer) => { out.receivedEncodedLength += chunk.length; });
  payload.on('error', (err) => out.destroy(err));
  decoder.on('error', (err: Error) => out.destroy(
    new ApiError('validation', `Request body is not valid ${encoding} data (${err.message}).`, { code: 'invalid_content_encoding' })));
  payload.pipe(decoder).pipe(out);
  return out;
}

/** JSON.parse with the checks above; throws a 400 ApiError naming the problem. */
function parseStrictJson(body: Buffer): unknown {
  if (!isUtf8(body)) {
    throw new ApiError('validation', 'Request body is not valid UTF-8; encode text as UTF-8.', { code: 'invalid_utf8' });
  }
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new ApiError('validation', `Request body is not valid JSON: ${(err as Error).message}`, { code: 'invalid_json' });
  }
  checkTree(value);
  return value;
}

/** A container or string of the body, and how to name it should it be refused. */
interface Node {
  value: unknown;
  parent: Node | undefined;
  key: string | number;
}

/**
 * Walks every key and string once, without recursion (a deeply nested body must not overflow
 * the stack), and drops object fields whose value is null, so that schemas see them as absent.
 * Numbers and other scalars are skipped, and a field's path (e.g. `input[3]`) is only spelled
 * out for the one refused, so a request of 2048 texts or of token ids costs no allocation per
 * element.
 */
function checkTree(root: unknown): void {
  const stack: Node[] = [];
  const visit = (value: unknown, parent: Node | undefined, key: string | number) => {
    if (typeof value === 'string') {
      if (!value.isWellFormed()) throw badUnicode(pathOf(parent, key), value);
    } else if (value !== null && typeof value === 'object') {
      stack.push({ value, parent, key });
    }
  };
  visit(root, undefined, '');
  while (stack.length > 0) {
    const node = stack.pop()!;
    const { value } = node;
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) visit(value[i], node, i);
      continue;
    }
    for (const [key, child] of Object.entries(value as object)) {
      if (key === '__proto__' || (key === 'constructor' && child !== null && typeof child === 'object' && 'prototype' in child)) {
        const at = pathOf(node, key);
        throw new ApiError('validation', `${at} is not allowed: the key '${key}' is refused in request bodies.`, { param: topField(at), code: 'forbidden_json_key' });
      }
      if (!key.isWellFormed()) throw badUnicode(pathOf(node, key), key);
      // null means absent: OpenAI's, TEI's and Cohere's specs mark optional fields nullable and
      // their SDKs send nulls. A null array element stays, as the wrong input it is.
      if (child === null) delete (value as Record<string, unknown>)[key];
      else visit(child, node, key);
    }
  }
}

/** `input[3]`, `extra.__proto__`: the path of `key` under `parent`, as the error names it. */
function pathOf(parent: Node | undefined, key: string | number): string {
  let path = '';
  for (let node: Node | undefined = { value: undefined, parent, key }; node?.parent; node = node.parent) {
    const step = typeof node.key === 'number' ? `[${node.key}]` : node.parent.parent ? `.${node.key}` : node.key;
    path = step + path;
  }
  return path;
}

function badUnicode(path: string, text: string): ApiError {
  const at = loneSurrogate(text);
  const unit = text.charCodeAt(at).toString(16).toUpperCase();
  return new ApiError('validation',
    `${path || 'body'} is not well-formed Unicode text (a lone surrogate \\u${unit} at character ${at}); send valid UTF-8 text.`,
    { param: topField(path) || null, code: 'invalid_unicode' });
}

/** Index of the first UTF-16 surrogate that is not half of a pair. */
function loneSurrogate(text: string): number {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0xd800 || c > 0xdfff) continue;
    const next = text.charCodeAt(i + 1);
    if (c > 0xdbff || !(next >= 0xdc00 && next <= 0xdfff)) return i;
    i++;
  }
  return -1;
}

const topField = (path: string) => path.split(/[.[]/)[0]!;
