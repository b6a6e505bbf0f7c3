package kugeldrill.mongo;

import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;

import de.bwaldvogel.mongo.MongoCollection;
import de.bwaldvogel.mongo.MongoDatabase;
import de.bwaldvogel.mongo.MongoVersion;
import de.bwaldvogel.mongo.backend.Utils;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.bson.ObjectId;
import de.bwaldvogel.mongo.exception.MongoServerException;
import de.bwaldvogel.mongo.wire.BsonConstants;
import de.bwaldvogel.mongo.wire.MongoWireProtocolHandler;
import io.netty.channel.Channel;

/**
 * mongo-java-server's in-memory backend, presented as the primary of a one-member replica set.
 *
 * <p>Kugelpos connects with {@code ?replicaSet=rs0} and wraps its writes in multi-document
 * transactions, which the driver only starts against a replica set that supports sessions.
 * This backend therefore
 * <ul>
 *   <li>answers {@code hello}/{@code isMaster} with {@code setName}, {@code hosts},
 *       {@code primary} and {@code logicalSessionTimeoutMinutes};</li>
 *   <li>accepts and drops the session and transaction fields the driver adds to every
 *       command ({@code lsid}, {@code txnNumber}, {@code startTransaction}, {@code autocommit},
 *       {@code $clusterTime}, {@code readConcern});</li>
 *   <li>answers {@code commitTransaction}, {@code abortTransaction}, {@code endSessions} and
 *       {@code refreshSessions} with ok, counting commits and aborts;</li>
 *   <li>evaluates pipeline updates ({@link PipelineUpdates}).</li>
 * </ul>
 * A transaction's writes are applied as they arrive, each atomic on its own: there is no
 * isolation between documents and an abort keeps what was written. The counters
 * ({@code kugeldrillStats} on any database) say how often that could have mattered.
 */
public final class ReplicaSetBackend extends MemoryBackend {

    static final Set<String> SESSION_FIELDS = Set.of(
        "lsid", "txnNumber", "startTransaction", "autocommit", "$clusterTime", "readConcern");

    private final String setName;
    private volatile String hostAndPort;
    private final ObjectId electionId = new ObjectId();
    private final AtomicLong connectionIds = new AtomicLong();
    private final AtomicLong commits = new AtomicLong();
    private final AtomicLong aborts = new AtomicLong();
    private final AtomicLong transactionalCommands = new AtomicLong();
    /**
     * MongoDB 7.0 (wire version 21), as Kugelpos' Compose file runs (`mongo:7.0`): current
     * drivers refuse older servers (pymongo 4.20 needs wire version 9), and the version is
     * only reported, it changes nothing in mongo-java-server's behaviour.
     */
    static final MongoVersion MONGO_7_0 = new MongoVersion() {
        @Override
        public List<Integer> getVersionArray() {
            return List.of(7, 0, 0);
        }

        @Override
        public int getWireVersion() {
            return 21;
        }
    };

    private final PipelineUpdates pipelines = new PipelineUpdates(this::runCommand, this::collection);

    public ReplicaSetBackend(String setName, String hostAndPort) {
        this.setName = setName;
        this.hostAndPort = hostAndPort;
        version(MONGO_7_0);
    }

    /** The address `hello` reports (known only after binding when port 0 was asked for). */
    void advertise(String hostAndPort) {
        this.hostAndPort = hostAndPort;
    }

    @Override
    public Document handleCommand(Channel channel, String databaseName, String command, Document query) {
        if (query.containsKey("txnNumber") && query.containsKey("autocommit")) {
            transactionalCommands.incrementAndGet();
        }
        Document stripped = withoutSessionFields(query);
        switch (command.toLowerCase(Locale.ROOT)) {
            case "hello":
            case "ismaster":
                return hello(command.equals("hello"));
            case "committransaction":
                commits.incrementAndGet();
                return ok();
            case "aborttransaction":
                aborts.incrementAndGet();
                System.err.println("abortTransaction: the transaction's writes are kept (no multi-document atomicity)");
                return ok();
            case "endsessions":
            case "refreshsessions":
                return ok();
            case "kugeldrillstats":
                return stats();
            case "listdatabases":
                return listDatabases(channel, databaseName, command, stripped);
            case "findandmodify":
                if (stripped.get("update") instanceof List<?>) {
                    return snapshot(pipelines.findAndModify(channel, databaseName, command, stripped));
                }
                return consistent(channel, databaseName, command, stripped, (String) stripped.get(command));
            case "find":
            case "aggregate":
            case "count":
            case "distinct":
                return consistent(channel, databaseName, command, stripped,
                    stripped.get(command) instanceof String ? (String) stripped.get(command) : null);
            case "getmore":
                return consistent(channel, databaseName, command, stripped, (String) stripped.get("collection"));
            case "update":
                if (PipelineUpdates.hasPipeline(stripped)) {
                    return pipelines.update(channel, databaseName, command, stripped);
                }
                break;
            default:
                break;
        }
        return super.handleCommand(channel, databaseName, command, stripped);
    }

    /** The command as the plain backend would see it: session and transaction fields removed. */
    static Document withoutSessionFields(Document query) {
        boolean any = false;
        for (String field : SESSION_FIELDS) {
            if (query.containsKey(field)) {
                any = true;
                break;
            }
        }
        if (!any) {
            return query;
        }
        Document copy = new Document();
        query.forEach((key, value) -> {
            if (!SESSION_FIELDS.contains(key)) {
                copy.put(key, value);
            }
        });
        return copy;
    }

    /**
     * A read (or findAndModify) under the collection's monitor, answered with a deep copy.
     *
     * <p>mongo-java-server updates stored documents in place and answers queries with the
     * stored objects themselves, which are serialized after the command returns: a reader
     * could see a document half-way through another connection's update, and a
     * findAndModify could return the value of a later update (two callers of an atomic
     * counter would get the same number). Copying under the monitor every write also takes
     * makes each answer a consistent snapshot, as MongoDB's are.
     */
    private Document consistent(Channel channel, String db, String command, Document query, String collectionName) {
        MongoCollection<?> collection = collectionName == null || collectionName.isEmpty()
            ? null : resolveDatabase(db).resolveCollection(collectionName, false);
        if (collection == null) {
            return super.handleCommand(channel, db, command, query);
        }
        synchronized (collection) {
            return snapshot(super.handleCommand(channel, db, command, query));
        }
    }

    /**
     * listDatabases as MongoDB answers it: only databases holding a collection.
     *
     * <p>mongo-java-server creates a database on any access (a read of a missing tenant's
     * data included) and lists it from then on. Kugelpos' account service decides whether a
     * tenant exists by `list_database_names()`, so a read-only probe of an unknown tenant
     * would make it "exist" and registration would silently pick another tenant id.
     */
    private Document listDatabases(Channel channel, String db, String command, Document query) {
        Document response = super.handleCommand(channel, db, command, query);
        List<Object> kept = new ArrayList<>();
        for (Object entry : list(response.get("databases"))) {
            String name = (String) ((Document) entry).get("name");
            Document collections = super.handleCommand(channel, name, "listCollections",
                new Document("listCollections", Integer.valueOf(1)).append("nameOnly", Boolean.TRUE));
            Document cursor = (Document) collections.get("cursor");
            if (cursor != null && !list(cursor.get("firstBatch")).isEmpty()) {
                kept.add(entry);
            }
        }
        response.put("databases", kept);
        return response;
    }

    private static Document snapshot(Document response) {
        return response.cloneDeeply();
    }

    private Document runCommand(Channel channel, String databaseName, String command, Document query) {
        return super.handleCommand(channel, databaseName, command, query);
    }

    /** The collection (created if needed): its monitor is the one its own writes synchronize on. */
    private MongoCollection<?> collection(String databaseName, String collectionName) {
        MongoDatabase database = resolveDatabase(databaseName);
        MongoCollection<?> collection = database.resolveCollection(collectionName, false);
        if (collection != null) {
            return collection;
        }
        try {
            return database.createCollectionOrThrowIfExists(collectionName);
        } catch (MongoServerException e) {
            // Created concurrently by another connection.
            return database.resolveCollection(collectionName, true);
        }
    }

    private Document hello(boolean helloCommand) {
        Document response = new Document();
        response.put(helloCommand ? "isWritablePrimary" : "ismaster", Boolean.TRUE);
        response.put("helloOk", Boolean.TRUE);
        response.put("setName", setName);
        response.put("setVersion", Integer.valueOf(1));
        response.put("electionId", electionId);
        response.put("hosts", List.of(hostAndPort));
        response.put("primary", hostAndPort);
        response.put("me", hostAndPort);
        response.put("secondary", Boolean.FALSE);
        response.put("logicalSessionTimeoutMinutes", Integer.valueOf(30));
        response.put("maxBsonObjectSize", Integer.valueOf(BsonConstants.MAX_BSON_OBJECT_SIZE));
        response.put("maxWriteBatchSize", Integer.valueOf(MongoWireProtocolHandler.MAX_WRITE_BATCH_SIZE));
        response.put("maxMessageSizeBytes", Integer.valueOf(MongoWireProtocolHandler.MAX_MESSAGE_SIZE_BYTES));
        response.put("localTime", Instant.now(getClock()));
        response.put("minWireVersion", Integer.valueOf(0));
        response.put("maxWireVersion", Integer.valueOf(MONGO_7_0.getWireVersion()));
        response.put("connectionId", Long.valueOf(connectionIds.incrementAndGet()));
        response.put("readOnly", Boolean.FALSE);
        Utils.markOkay(response);
        return response;
    }

    private Document stats() {
        Document response = new Document();
        response.put("commits", Long.valueOf(commits.get()));
        response.put("aborts", Long.valueOf(aborts.get()));
        response.put("transactionalCommands", Long.valueOf(transactionalCommands.get()));
        response.put("pipelineUpdates", Long.valueOf(pipelines.count()));
        Utils.markOkay(response);
        return response;
    }

    static Document ok() {
        Document response = new Document();
        Utils.markOkay(response);
        return response;
    }

    static List<Object> list(Object value) {
        List<Object> out = new ArrayList<>();
        if (value instanceof List<?>) {
            out.addAll((List<?>) value);
        }
        return out;
    }
}
