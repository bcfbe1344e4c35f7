/**
 * Creating a lock table for new users, with the key schema the AWS lock client expects
 * (AmazonDynamoDBLockClient.createLockTableInDynamoDB: a HASH key of type S, "key" by default,
 * and an optional RANGE key of type S) and DynamoDB TTL on lockdeck's `lockdeckItemTtl`
 * attribute, which lockdeck sets on released items only, so that lock names no longer used are
 * swept. Held items never carry it (a stale TTL could otherwise delete a live holder's item).
 */
import {
  CreateTableCommand,
  DescribeTableCommand,
  UpdateTimeToLiveCommand,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';

import { InvalidArgumentError } from '../../locks/errors';
import { LD } from './layout';

export interface CreateLockTableOptions {
  /** Partition key attribute name (default "key", the AWS client's DEFAULT_PARTITION_KEY_NAME). */
  partitionKey?: string;
  /** Optional sort key attribute name (the AWS client has no default). */
  sortKey?: string;
  /** On-demand (default) or provisioned capacity. */
  billing?: 'PAY_PER_REQUEST' | { readCapacityUnits: number; writeCapacityUnits: number };
  /** Enable DynamoDB TTL on lockdeck's item-expiry attribute (default true). */
  ttl?: boolean;
  /** How long to wait for the table to become ACTIVE (default 60 000 ms). */
  waitMs?: number;
}

export interface CreateLockTableResult {
  /** false when a table of that name existed already (its schema is left as it is). */
  created: boolean;
  /** 'enabled', 'not-requested', or 'unsupported' (an emulator without UpdateTimeToLive, e.g. dynalite). */
  ttl: 'enabled' | 'not-requested' | 'unsupported';
}

const TABLE_NAME = /^[a-zA-Z0-9_.-]{3,255}$/;

/** Creates `table` (if missing) in the AWS lock client's layout and enables TTL on it. */
export async function createLockTable(client: DynamoDBClient, table: string, opts: CreateLockTableOptions = {}): Promise<CreateLockTableResult> {
  if (!TABLE_NAME.test(table)) throw new InvalidArgumentError(`table name must be 3 to 255 of [a-zA-Z0-9_.-], got "${table}"`);
  const pk = opts.partitionKey ?? 'key';
  const sk = opts.sortKey;
  if (pk.length === 0 || (sk !== undefined && (sk.length === 0 || sk === pk))) {
    throw new InvalidArgumentError('partitionKey and sortKey must be non-empty and different');
  }
  let created = true;
  try {
    const billing = opts.billing ?? 'PAY_PER_REQUEST';
    await client.send(
      new CreateTableCommand({
        TableName: table,
        KeySchema: [{ AttributeName: pk, KeyType: 'HASH' }, ...(sk ? [{ AttributeName: sk, KeyType: 'RANGE' as const }] : [])],
        AttributeDefinitions: [{ AttributeName: pk, AttributeType: 'S' }, ...(sk ? [{ AttributeName: sk, AttributeType: 'S' as const }] : [])],
        ...(billing === 'PAY_PER_REQUEST'
          ? { BillingMode: 'PAY_PER_REQUEST' as const }
          : { BillingMode: 'PROVISIONED' as const, ProvisionedThroughput: { ReadCapacityUnits: billing.readCapacityUnits, WriteCapacityUnits: billing.writeCapacityUnits } }),
      }),
    );
  } catch (err) {
    if ((err as { name?: string }).name !== 'ResourceInUseException') throw err;
    created = false;
  }
  const deadline = Date.now() + (opts.waitMs ?? 60_000);
  for (;;) {
    const d = await client.send(new DescribeTableCommand({ TableName: table }));
    if (d.Table?.TableStatus === 'ACTIVE') break;
    if (Date.now() > deadline) throw new Error(`table "${table}" is not ACTIVE after ${opts.waitMs ?? 60_000} ms (status ${d.Table?.TableStatus})`);
    await new Promise((r) => setTimeout(r, 200));
  }
  if (opts.ttl === false) return { created, ttl: 'not-requested' };
  try {
    await client.send(new UpdateTimeToLiveCommand({ TableName: table, TimeToLiveSpecification: { AttributeName: LD.itemTtl, Enabled: true } }));
    return { created, ttl: 'enabled' };
  } catch (err) {
    const name = (err as { name?: string }).name;
    // dynalite 4 answers UnknownOperationException; DynamoDB answers ValidationException when TTL
    // is already enabled on this attribute.
    if (name === 'UnknownOperationException') return { created, ttl: 'unsupported' };
    if (name === 'ValidationException' && /already enabled/i.test((err as Error).message)) return { created, ttl: 'enabled' };
    throw err;
  }
}
