import org.apache.flink.api.common.functions.MapFunction;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;

/**
 * A tiny unbounded streaming job for the provider's integration tests: a number sequence, slowed down,
 * into a discarding sink. Arguments: [job name] [milliseconds per record]. Without a name the job takes
 * its name from the configuration (pipeline.name).
 */
public class ThrottledSequenceJob {
    public static void main(String[] args) throws Exception {
        String name = args.length > 0 ? args[0] : "";
        long sleepMs = args.length > 1 ? Long.parseLong(args[1]) : 10L;
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.fromSequence(0, Long.MAX_VALUE).map(new Throttle(sleepMs)).sinkTo(new DiscardingSink<>());
        if (name.isEmpty()) {
            env.execute();
        } else {
            env.execute(name);
        }
    }

    /** Passes records through, sleeping between them. */
    public static class Throttle implements MapFunction<Long, Long> {
        private final long sleepMs;

        public Throttle(long sleepMs) {
            this.sleepMs = sleepMs;
        }

        @Override
        public Long map(Long value) throws Exception {
            Thread.sleep(sleepMs);
            return value;
        }
    }
}
