package kugeldrill.mongo;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

import de.bwaldvogel.mongo.MongoCollection;
import de.bwaldvogel.mongo.backend.Utils;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.bson.ObjectId;
import io.netty.channel.Channel;

/**
 * Updates whose {@code update}/{@code u} is an aggregation pipeline (MongoDB 4.2+), which
 * mongo-java-server does not evaluate.
 *
 * <p>Kugelpos' terminal counter numbers transactions with one {@code find_one_and_update}
 * whose update is a two-stage pipeline ({@code $set} with {@code $ifNull}, {@code $cond},
 * {@code $type}, {@code $add}), relying on it being atomic. Here the matching document is read,
 * the pipeline is evaluated on it ({@link Pipeline}), and the result is written back as a
 * replacement through the backend's own command, all while holding the collection's monitor,
 * which every write to that collection also takes. So a pipeline update is atomic against
 * every other operation on the collection, as on MongoDB.
 */
final class PipelineUpdates {

    interface CommandRunner {
        Document run(Channel channel, String databaseName, String command, Document query);
    }

    interface CollectionResolver {
        MongoCollection<?> resolve(String databaseName, String collectionName);
    }

    private final CommandRunner runner;
    private final CollectionResolver collections;
    private final AtomicLong count = new AtomicLong();

    PipelineUpdates(CommandRunner runner, CollectionResolver collections) {
        this.runner = runner;
        this.collections = collections;
    }

    long count() {
        return count.get();
    }

    static boolean hasPipeline(Document updateCommand) {
        for (Object statement : ReplicaSetBackend.list(updateCommand.get("updates"))) {
            if (statement instanceof Document && ((Document) statement).get("u") instanceof List<?>) {
                return true;
            }
        }
        return false;
    }

    /** findAndModify with a pipeline: rewritten as a replacement of the one matching document. */
    Document findAndModify(Channel channel, String db, String command, Document cmd) {
        String collectionName = (String) cmd.get(command);
        List<Object> pipeline = ReplicaSetBackend.list(cmd.get("update"));
        Document query = cmd.get("query") instanceof Document ? (Document) cmd.get("query") : new Document();
        MongoCollection<?> collection = collections.resolve(db, collectionName);
        synchronized (collection) {
            Document found = first(find(channel, db, collectionName, query, cmd.get("sort"), 1));
            Document rewritten = without(cmd, "query", "update", "sort", "upsert");
            if (found != null) {
                rewritten.put("query", new Document("_id", found.get("_id")));
                rewritten.put("update", withId(Pipeline.apply(pipeline, found), found.get("_id")));
                rewritten.put("upsert", Boolean.FALSE);
            } else if (Utils.isTrue(cmd.get("upsert"))) {
                rewritten.put("query", query);
                rewritten.put("update", Pipeline.apply(pipeline, Pipeline.upsertBase(query)));
                rewritten.put("upsert", Boolean.TRUE);
            } else {
                Document response = new Document("lastErrorObject",
                    new Document("n", Integer.valueOf(0)).append("updatedExisting", Boolean.FALSE));
                response.put("value", null);
                Utils.markOkay(response);
                return response;
            }
            count.incrementAndGet();
            // Copied while the monitor is held: the stored document may change right after.
            return runner.run(channel, db, command, rewritten).cloneDeeply();
        }
    }

    /** The update command: pipeline statements evaluated here, the others passed on one by one. */
    Document update(Channel channel, String db, String command, Document cmd) {
        String collectionName = (String) cmd.get(command);
        List<Object> statements = ReplicaSetBackend.list(cmd.get("updates"));
        int matched = 0;
        int modified = 0;
        List<Document> upserted = new ArrayList<>();
        MongoCollection<?> collection = collections.resolve(db, collectionName);
        synchronized (collection) {
            for (int i = 0; i < statements.size(); i++) {
                Document statement = (Document) statements.get(i);
                if (!(statement.get("u") instanceof List<?>)) {
                    Document single = without(cmd, "updates");
                    single.put("updates", List.of(statement));
                    Document result = runner.run(channel, db, command, single);
                    matched += number(result.get("n"));
                    modified += number(result.get("nModified"));
                    for (Object up : ReplicaSetBackend.list(result.get("upserted"))) {
                        upserted.add(new Document("index", Integer.valueOf(i)).append("_id", ((Document) up).get("_id")));
                    }
                    continue;
                }
                List<Object> pipeline = ReplicaSetBackend.list(statement.get("u"));
                Document query = statement.get("q") instanceof Document ? (Document) statement.get("q") : new Document();
                boolean multi = Utils.isTrue(statement.get("multi"));
                List<Document> docs = find(channel, db, collectionName, query, null, multi ? 0 : 1);
                if (docs.isEmpty() && Utils.isTrue(statement.get("upsert"))) {
                    Document created = Pipeline.apply(pipeline, Pipeline.upsertBase(query));
                    Object id = created.containsKey("_id") ? created.get("_id") : new ObjectId();
                    runner.run(channel, db, "insert", new Document("insert", collectionName)
                        .append("documents", List.of(withId(created, id))));
                    matched += 1;
                    upserted.add(new Document("index", Integer.valueOf(i)).append("_id", id));
                    count.incrementAndGet();
                    continue;
                }
                for (Document doc : docs) {
                    Document replacement = withId(Pipeline.apply(pipeline, doc), doc.get("_id"));
                    Document result = runner.run(channel, db, command, new Document(command, collectionName)
                        .append("updates", List.of(new Document("q", new Document("_id", doc.get("_id")))
                            .append("u", replacement))));
                    matched += number(result.get("n"));
                    modified += number(result.get("nModified"));
                    count.incrementAndGet();
                }
            }
        }
        Document response = new Document("n", Integer.valueOf(matched));
        response.put("nModified", Integer.valueOf(modified));
        if (!upserted.isEmpty()) {
            response.put("upserted", upserted);
        }
        Utils.markOkay(response);
        return response;
    }

    private List<Document> find(Channel channel, String db, String collection, Document filter, Object sort, int limit) {
        Document find = new Document("find", collection).append("filter", filter);
        if (sort instanceof Document) {
            find.put("sort", sort);
        }
        if (limit > 0) {
            find.put("limit", Integer.valueOf(limit));
            find.put("singleBatch", Boolean.TRUE);
        } else {
            find.put("batchSize", Integer.valueOf(Integer.MAX_VALUE));
        }
        Document response = runner.run(channel, db, "find", find);
        Document cursor = (Document) response.get("cursor");
        List<Document> out = new ArrayList<>();
        for (Object doc : ReplicaSetBackend.list(cursor == null ? null : cursor.get("firstBatch"))) {
            out.add((Document) doc);
        }
        return out;
    }

    private static Document first(List<Document> docs) {
        return docs.isEmpty() ? null : docs.get(0);
    }

    private static Document without(Document cmd, String... keys) {
        Document copy = new Document();
        List<String> drop = List.of(keys);
        cmd.forEach((key, value) -> {
            if (!drop.contains(key)) {
                copy.put(key, value);
            }
        });
        return copy;
    }

    /** The document with `_id` first and equal to `id` (a pipeline update never changes `_id`). */
    private static Document withId(Document doc, Object id) {
        Document out = new Document("_id", id);
        doc.forEach((key, value) -> {
            if (!key.equals("_id")) {
                out.put(key, value);
            }
        });
        return out;
    }

    private static int number(Object value) {
        return value instanceof Number ? ((Number) value).intValue() : 0;
    }
}
