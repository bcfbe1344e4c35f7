import { inject } from 'vitest';

import { createDynamoDbBackend, createLockTable, makeDynamoDbClient } from '../lib/backends/dynamodb';
import { randomId } from '../lib/locks/util';
import { runBackendContract } from './contract';

// Each make() has its own SDK client, as a separate process would; all share one fresh table in
// the AWS lock client's layout on the harness's dynalite.
runBackendContract('dynamodb', async () => {
  const endpoint = inject('dynamodbEndpoint');
  const table = `lockdeck-ct-${randomId(4).replace(/[^A-Za-z0-9]/g, 'x')}`;
  const admin = makeDynamoDbClient({ endpoint, region: 'us-east-1' });
  await createLockTable(admin, table);
  admin.destroy();
  return {
    make: async () => createDynamoDbBackend({ id: 'ddb-test', type: 'dynamodb', endpoint, region: 'us-east-1', tables: [table] }),
  };
});

