import type { Operation } from '../dialects/operation.ts';
import { adminOperations } from './admin.ts';
import { healthOperations } from './health.ts';
import { metricsOperations } from './metrics.ts';
import { statsOperations } from './stats.ts';

/** The operations routes (health, metrics, stats, admin), documented and served like the dialects' own. */
export const OPS_OPERATIONS: Operation[] = [...healthOperations, ...metricsOperations, ...statsOperations, ...adminOperations];
