package kugeldrill.mongo;

import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Date;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import de.bwaldvogel.mongo.backend.Missing;
import de.bwaldvogel.mongo.backend.Utils;
import de.bwaldvogel.mongo.backend.aggregation.Expression;
import de.bwaldvogel.mongo.backend.aggregation.stage.ProjectStage;
import de.bwaldvogel.mongo.bson.BinData;
import de.bwaldvogel.mongo.bson.BsonJavaScript;
import de.bwaldvogel.mongo.bson.BsonRegularExpression;
import de.bwaldvogel.mongo.bson.BsonTimestamp;
import de.bwaldvogel.mongo.bson.Decimal128;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.bson.MaxKey;
import de.bwaldvogel.mongo.bson.MinKey;
import de.bwaldvogel.mongo.bson.ObjectId;
import de.bwaldvogel.mongo.exception.MongoServerError;

/**
 * Evaluates an update pipeline on one document, with MongoDB's semantics for the stages an
 * update may use: {@code $set}/{@code $addFields} (every field of a stage is computed from the
 * stage's input, dotted names set embedded fields, {@code $$REMOVE}/missing values remove the
 * field), {@code $unset}, {@code $project}, {@code $replaceRoot}/{@code $replaceWith}.
 *
 * <p>Expressions are evaluated by mongo-java-server's own evaluator, except {@code $type}, which
 * it lacks and which Kugelpos' terminal counter uses to detect a counter seen for the first
 * time ({@code {"$type": "$count_dic.x"} == "missing"}): it is resolved here first.
 */
final class Pipeline {

    private Pipeline() {
    }

    static Document apply(List<Object> pipeline, Document input) {
        Document current = input.cloneDeeply();
        for (Object stageObject : pipeline) {
            if (!(stageObject instanceof Document) || ((Document) stageObject).size() != 1) {
                throw new MongoServerError(40323, "A pipeline stage specification object must contain exactly one field.");
            }
            Document stage = (Document) stageObject;
            String name = stage.keySet().iterator().next();
            Object spec = stage.get(name);
            switch (name) {
                case "$set":
                case "$addFields":
                    current = set(current, requireDocument(name, spec));
                    break;
                case "$unset":
                    current = unset(current, spec);
                    break;
                case "$project":
                    current = new ProjectStage(requireDocument(name, spec)).apply(Stream.of(current)).findFirst().orElseThrow();
                    break;
                case "$replaceRoot":
                    current = replace(current, requireDocument(name, spec).get("newRoot"));
                    break;
                case "$replaceWith":
                    current = replace(current, spec);
                    break;
                default:
                    throw new MongoServerError(72, "InvalidOptions",
                        "Invalid update :: caused by :: " + name + " is not allowed to be used within an update");
            }
        }
        return current;
    }

    /** Equality fields of an upsert's query: the document a pipeline upsert starts from. */
    static Document upsertBase(Document query) {
        Document base = new Document();
        for (Map.Entry<String, Object> entry : query.entrySet()) {
            String key = entry.getKey();
            Object value = entry.getValue();
            if (key.startsWith("$") || isOperatorDocument(value)) {
                continue;
            }
            Utils.changeSubdocumentValue(base, key, value);
        }
        return base;
    }

    static Object evaluate(Object expression, Document document) {
        return Expression.evaluateDocument(resolveTypes(expression, document), document);
    }

    private static Document set(Document input, Document spec) {
        Document output = input.cloneDeeply();
        for (Map.Entry<String, Object> entry : spec.entrySet()) {
            Object value = evaluate(entry.getValue(), input);
            if (value instanceof Missing || "$$REMOVE".equals(entry.getValue())) {
                Utils.removeSubdocumentValue(output, entry.getKey());
            } else {
                Utils.changeSubdocumentValue(output, entry.getKey(), value);
            }
        }
        return output;
    }

    private static Document unset(Document input, Object spec) {
        Document output = input.cloneDeeply();
        List<Object> paths = new ArrayList<>();
        if (spec instanceof Collection<?>) {
            paths.addAll((Collection<?>) spec);
        } else {
            paths.add(spec);
        }
        for (Object path : paths) {
            if (!(path instanceof String)) {
                throw new MongoServerError(31120, "$unset specification must be a string or an array containing only string values");
            }
            Utils.removeSubdocumentValue(output, (String) path);
        }
        return output;
    }

    private static Document replace(Document input, Object newRootExpression) {
        Object newRoot = evaluate(newRootExpression, input);
        if (!(newRoot instanceof Document)) {
            throw new MongoServerError(40228, "'replacement document' must evaluate to an object, but resulting value was: "
                + Utils.describeType(newRoot));
        }
        return (Document) newRoot;
    }

    private static Document requireDocument(String stage, Object spec) {
        if (!(spec instanceof Document)) {
            throw new MongoServerError(40272, stage + " specification stage must be an object, got " + Utils.describeType(spec));
        }
        return (Document) spec;
    }

    private static boolean isOperatorDocument(Object value) {
        if (!(value instanceof Document)) {
            return false;
        }
        for (String key : ((Document) value).keySet()) {
            if (key.startsWith("$")) {
                return true;
            }
        }
        return false;
    }

    /** A copy of the expression with every {@code {$type: x}} replaced by its literal result. */
    static Object resolveTypes(Object expression, Document document) {
        if (expression instanceof Document) {
            Document doc = (Document) expression;
            if (doc.size() == 1 && doc.containsKey("$literal")) {
                return doc;
            }
            if (doc.size() == 1 && doc.containsKey("$type")) {
                Object argument = doc.get("$type");
                if (argument instanceof List<?>) {
                    List<?> args = (List<?>) argument;
                    if (args.size() != 1) {
                        throw new MongoServerError(16020, "Expression $type takes exactly 1 arguments. " + args.size() + " were passed in.");
                    }
                    argument = args.get(0);
                }
                Object value = Expression.evaluateDocument(resolveTypes(argument, document), document);
                return new Document("$literal", typeName(value));
            }
            Document copy = new Document();
            doc.forEach((key, value) -> copy.put(key, resolveTypes(value, document)));
            return copy;
        }
        if (expression instanceof List<?>) {
            List<Object> copy = new ArrayList<>();
            for (Object item : (List<?>) expression) {
                copy.add(resolveTypes(item, document));
            }
            return copy;
        }
        return expression;
    }

    /** MongoDB's {@code $type} name of a value. */
    static String typeName(Object value) {
        if (value instanceof Missing) {
            return "missing";
        } else if (value == null) {
            return "null";
        } else if (value instanceof Double || value instanceof Float) {
            return "double";
        } else if (value instanceof Integer || value instanceof Short || value instanceof Byte) {
            return "int";
        } else if (value instanceof Long) {
            return "long";
        } else if (value instanceof Decimal128) {
            return "decimal";
        } else if (value instanceof String) {
            return "string";
        } else if (value instanceof Document || value instanceof Map<?, ?>) {
            return "object";
        } else if (value instanceof Collection<?> || value.getClass().isArray() && !(value instanceof byte[])) {
            return "array";
        } else if (value instanceof Boolean) {
            return "bool";
        } else if (value instanceof Instant || value instanceof Date) {
            return "date";
        } else if (value instanceof ObjectId) {
            return "objectId";
        } else if (value instanceof BinData || value instanceof byte[] || value instanceof UUID) {
            return "binData";
        } else if (value instanceof BsonRegularExpression || value instanceof Pattern) {
            return "regex";
        } else if (value instanceof BsonTimestamp) {
            return "timestamp";
        } else if (value instanceof BsonJavaScript) {
            return "javascript";
        } else if (value instanceof MinKey) {
            return "minKey";
        } else if (value instanceof MaxKey) {
            return "maxKey";
        }
        throw new MongoServerError(2, "BadValue", "$type: unsupported value of class " + value.getClass().getName());
    }
}
