#!/usr/bin/env node
// The GraphQL over HTTP audit suite (graphql-http's `auditServer`) against a running studio.
//
//   node conformance/audit.mjs http://127.0.0.1:8000/graphql
//   node conformance/audit.mjs --header 'Authorization: Bearer <token>' URL
//   node conformance/audit.mjs --json URL      # one JSON document, for tests/spec
//
// Prints every audit (its id, requirement and result, with the reason for a failure) and the
// counts per requirement level. Exits 1 when a MUST fails, 2 on a usage error or when the
// server cannot be reached. The audits only send `{ __typename }`-style documents, which the
// studio answers without signing in; --header adds a header (repeatable) to every request.
import { auditServer } from 'graphql-http';

const USAGE = 'usage: node audit.mjs [--json] [--header "Name: value"]... URL';

function parseArguments(argv) {
  const options = { json: false, headers: {}, url: null };
  for (let index = 0; index < argv.length; index += 1) {
    const argument = argv[index];
    if (argument === '--json') {
      options.json = true;
    } else if (argument === '--header') {
      const header = argv[(index += 1)] ?? '';
      const colon = header.indexOf(':');
      if (colon < 1) throw new Error(`--header needs "Name: value", got ${JSON.stringify(header)}`);
      options.headers[header.slice(0, colon).trim()] = header.slice(colon + 1).trim();
    } else if (options.url === null && !argument.startsWith('--')) {
      options.url = argument;
    } else {
      throw new Error(`unexpected argument ${JSON.stringify(argument)}`);
    }
  }
  if (options.url === null) throw new Error('the endpoint URL is missing');
  return options;
}

function withHeaders(extra) {
  if (Object.keys(extra).length === 0) return fetch;
  return (input, init = {}) => {
    const headers = new Headers(init.headers);
    for (const [name, value] of Object.entries(extra)) headers.set(name, value);
    return fetch(input, { ...init, headers });
  };
}

// The level is the first word of the audit's name ("MUST accept …").
const LEVELS = ['MUST', 'SHOULD', 'MAY'];

async function describe(result) {
  const level = result.name.split(' ', 1)[0];
  const described = { id: result.id, level, name: result.name, passed: result.status === 'ok' };
  if (!described.passed) {
    described.reason = result.reason;
    const response = result.response;
    if (response) {
      described.status = response.status;
      described.contentType = response.headers.get('content-type');
      described.body = (await response.text()).slice(0, 500);
    }
  }
  return described;
}

function count(results) {
  return Object.fromEntries(
    LEVELS.map((level) => {
      const ofLevel = results.filter((result) => result.level === level);
      const passed = ofLevel.filter((result) => result.passed).length;
      return [level, { passed, failed: ofLevel.length - passed }];
    }),
  );
}

function printText(url, results, counts) {
  console.log(`GraphQL over HTTP audit of ${url} (graphql-http)`);
  for (const result of results) {
    console.log(`${result.passed ? 'pass' : 'FAIL'}  ${result.id}  ${result.name}`);
    if (!result.passed) {
      console.log(`      ${result.reason}`);
      if (result.status !== undefined) {
        console.log(`      got ${result.status} ${result.contentType ?? ''}: ${result.body}`);
      }
    }
  }
  for (const level of LEVELS) {
    const { passed, failed } = counts[level];
    console.log(`${level.padEnd(6)}  passed ${passed}  failed ${failed}`);
  }
}

async function main() {
  let options;
  try {
    options = parseArguments(process.argv.slice(2));
  } catch (error) {
    console.error(`${error.message}\n${USAGE}`);
    return 2;
  }
  let audits;
  try {
    audits = await auditServer({ url: options.url, fetchFn: withHeaders(options.headers) });
  } catch (error) {
    // Only fatal problems throw (the server is unreachable, say); failed audits are results.
    console.error(`could not audit ${options.url}: ${error.cause?.message ?? error.message}`);
    return 2;
  }
  const results = [];
  for (const audit of audits) results.push(await describe(audit));
  const counts = count(results);
  if (options.json) {
    console.log(JSON.stringify({ url: options.url, counts, results }, null, 2));
  } else {
    printText(options.url, results, counts);
  }
  return counts.MUST.failed === 0 ? 0 : 1;
}

process.exitCode = await main();
