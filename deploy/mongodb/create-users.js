// humantask's MongoDB users, one per service that uses the database. The mongo image
// runs this once, as the root user, when it initialises an empty data directory
// (/docker-entrypoint-initdb.d); passwords come from the environment (.env).
//
// - humantask-taskstore: reads and writes the humantask database (tasks, customers,
//   workers, credentials), which it owns;
// - humantask-notifier: only its delivery records, never customers or their callback
//   secrets (it asks the task-store for those, and the task-store checks who asks).
//
// The gateway and humantask-admin have no database access at all.
const database = db.getSiblingDB(process.env.MONGO_INITDB_DATABASE || 'humantask');

function password(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (see .env.example)`);
  return value;
}

const NOTIFIER_COLLECTIONS = ['callback_deliveries', 'callback_attempts'];

database.createRole({
  role: 'humantask-notifier',
  privileges: NOTIFIER_COLLECTIONS.map((collection) => ({
    resource: { db: database.getName(), collection },
    actions: ['find', 'insert', 'update', 'remove', 'createIndex'],
  })),
  roles: [],
});
database.createUser({
  user: 'humantask-taskstore',
  pwd: password('MONGODB_TASKSTORE_PASSWORD'),
  roles: [{ role: 'readWrite', db: database.getName() }],
});
database.createUser({
  user: 'humantask-notifier',
  pwd: password('MONGODB_NOTIFIER_PASSWORD'),
  roles: [{ role: 'humantask-notifier', db: database.getName() }],
});
