// The npm `etcd3` client (Microsoft's, 1.1.2: @grpc/grpc-js and its own
// copy of etcd's protos) against strata-server: put/get, a watch from a
// revision, a lease with a key, revoke, a lock. ENDPOINT is host:port.
const { Etcd3 } = require('etcd3');
const assert = require('assert');

(async () => {
  const client = new Etcd3({ hosts: process.env.ENDPOINT });
  await client.put('greeting').value('hello');
  assert.strictEqual(await client.get('greeting').string(), 'hello');
  const got = await client.get('greeting').exec();
  assert.strictEqual(got.kvs[0].mod_revision, '2');
  assert.strictEqual(got.kvs[0].version, '1');

  const watcher = await client.watch().key('greeting').startRevision('2').create();
  const seen = [];
  watcher.on('put', (kv) => seen.push(kv.value.toString()));
  await client.put('greeting').value('again');
  for (let i = 0; i < 50 && seen.length < 2; i++) await new Promise((r) => setTimeout(r, 50));
  await watcher.cancel();
  assert.deepStrictEqual(seen, ['hello', 'again']);

  const lease = client.lease(30);
  await lease.put('leased').value('x');
  assert.strictEqual(await client.get('leased').string(), 'x');
  await lease.revoke();
  assert.strictEqual(await client.get('leased').string(), null);

  const lock = client.lock('mylock');
  await lock.acquire();
  await lock.release();

  client.close();
  console.log('npm etcd3: ok');
  process.exit(0);  // grpc-js keeps timers that would hold the process open
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
