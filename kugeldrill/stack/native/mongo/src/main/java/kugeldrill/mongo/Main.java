package kugeldrill.mongo;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.concurrent.CountDownLatch;

import de.bwaldvogel.mongo.MongoServer;

/**
 * {@code java -cp ... kugeldrill.mongo.Main --host 127.0.0.1 --port 27017 --replica-set rs0}
 *
 * <p>Serves the in-memory, replica-set-shaped backend on a loopback address until SIGTERM.
 * Prints one line {@code kugelpos-mongo ready on HOST:PORT replica set NAME} when it accepts
 * connections (the launcher waits for it); any other address than loopback is refused.
 */
public final class Main {

    private Main() {
    }

    public static void main(String[] args) throws Exception {
        String host = "127.0.0.1";
        int port = 0;
        String setName = "rs0";
        for (int i = 0; i < args.length; i++) {
            String arg = args[i];
            String value = i + 1 < args.length ? args[i + 1] : null;
            switch (arg) {
                case "--host":
                    host = require(arg, value);
                    i++;
                    break;
                case "--port":
                    port = Integer.parseInt(require(arg, value));
                    i++;
                    break;
                case "--replica-set":
                    setName = require(arg, value);
                    i++;
                    break;
                default:
                    usage("unknown argument " + arg);
            }
        }
        if (!InetAddress.getByName(host).isLoopbackAddress()) {
            usage("--host must be a loopback address, got " + host);
        }
        ReplicaSetBackend backend = new ReplicaSetBackend(setName, host + ":" + port);
        MongoServer server = new MongoServer(backend);
        try {
            server.bind(new InetSocketAddress(host, port));
        } catch (RuntimeException e) {
            System.err.println("kugelpos-mongo: cannot listen on " + host + ":" + port + ": " + e.getMessage());
            System.exit(2);
        }
        InetSocketAddress bound = server.getLocalAddress();
        String address = host + ":" + bound.getPort();
        backend.advertise(address);
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            server.shutdownNow();
            stopped.countDown();
        }, "kugelpos-mongo-shutdown"));
        System.out.println("kugelpos-mongo ready on " + address + " replica set " + setName);
        System.out.flush();
        stopped.await();
    }

    private static String require(String option, String value) {
        if (value == null) {
            usage(option + " needs a value");
        }
        return value;
    }

    private static void usage(String problem) {
        System.err.println("kugelpos-mongo: " + problem);
        System.err.println("usage: kugeldrill.mongo.Main [--host 127.0.0.1] [--port N] [--replica-set rs0]");
        System.exit(2);
    }
}
