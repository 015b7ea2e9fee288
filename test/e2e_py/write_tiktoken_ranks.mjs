// Writes OpenAI's cl100k_base rank file in tiktoken's own format ("<base64 token> <rank>" per
// line), from the copy that ships inside the js-tiktoken npm package. Python's tiktoken would
// download this file on first use; the tests hand it over through TIKTOKEN_CACHE_DIR instead.
import ranks from 'js-tiktoken/ranks/cl100k_base';

const lines = [];
for (const line of ranks.bpe_ranks.split('\n')) {
  if (!line) continue;
  const [, offset, ...tokens] = line.split(' ');
  tokens.forEach((token, i) => lines.push(`${token} ${Number(offset) + i}`));
}
process.stdout.write(lines.join('\n') + '\n');
