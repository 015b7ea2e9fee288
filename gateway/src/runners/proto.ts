import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType as HealthProto } from '../generated/health.ts';
import type { ProtoGrpcType as RunnerProto } from '../generated/runner.ts';

const PROTO_DIR = fileURLToPath(new URL('../../../proto', import.meta.url));

// Options match the ones scripts/gen_proto.sh generates the types with.
const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

function load<T>(file: string): T {
  return grpc.loadPackageDefinition(protoLoader.loadSync(file, LOADER_OPTIONS)) as unknown as T;
}

/** The runner service's client constructor, from proto/runner.proto. */
export const RunnerClientCtor = load<RunnerProto>('runner.proto').edgeembed.runner.v1.Runner;

/** The standard health service's client constructor, from proto/grpc/health/v1/health.proto. */
export const HealthClientCtor = load<HealthProto>('grpc/health/v1/health.proto').grpc.health.v1.Health;
