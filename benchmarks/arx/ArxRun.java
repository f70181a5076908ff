/*
 * Runs one ARX anonymization the way ARX's own JUnit suite sets it up (AbstractAnonymizationTest), so
 * benchmarks/deid_arx_suite.py can time ARX beside piguard on the same machine and read ARX's optimum.
 *
 * java -cp ARX_CLASSES:ARX_JARS:. ArxRun DATA.csv HIERARCHY_DIR SUPPRESSION METRIC SENSITIVE|- REPEAT MODEL...
 *
 * METRIC: entropy-monotonic | entropy-nonmonotonic | discernability-monotonic | discernability-nonmonotonic
 *         | aecs | loss[:GS_FACTOR]
 * MODEL:  k:K | l-distinct:COL:L | l-entropy:COL:L[:grassberger] | l-recursive:COL:C:L | t-equal:COL:T
 *         | t-hierarchical:COL:T | d-presence:MIN:MAX:SUBSET.csv | k-map-table:K:SUBSET.csv
 *         | k-map-estimate:K:SIGNIFICANCE:POPULATION:poisson|zero-truncated-poisson | average-risk:A[:H:R]
 * Prints one JSON line: {"score": ..., "transformation": [...] or null, "ms": [per repetition]}.
 */
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import org.deidentifier.arx.ARXAnonymizer;
import org.deidentifier.arx.ARXConfiguration;
import org.deidentifier.arx.ARXPopulationModel;
import org.deidentifier.arx.ARXResult;
import org.deidentifier.arx.AttributeType;
import org.deidentifier.arx.AttributeType.Hierarchy;
import org.deidentifier.arx.Data;
import org.deidentifier.arx.DataSubset;
import org.deidentifier.arx.criteria.AverageReidentificationRisk;
import org.deidentifier.arx.criteria.DPresence;
import org.deidentifier.arx.criteria.DistinctLDiversity;
import org.deidentifier.arx.criteria.EntropyLDiversity;
import org.deidentifier.arx.criteria.EqualDistanceTCloseness;
import org.deidentifier.arx.criteria.HierarchicalDistanceTCloseness;
import org.deidentifier.arx.criteria.KAnonymity;
import org.deidentifier.arx.criteria.KMap;
import org.deidentifier.arx.criteria.PrivacyCriterion;
import org.deidentifier.arx.criteria.RecursiveCLDiversity;
import org.deidentifier.arx.io.CSVHierarchyInput;
import org.deidentifier.arx.metric.Metric;

public class ArxRun {

    static Metric<?> metric(String spec) {
        String[] p = spec.split(":");
        switch (p[0]) {
        case "entropy-monotonic": return Metric.createPrecomputedEntropyMetric(0.1d, true);
        case "entropy-nonmonotonic": return Metric.createPrecomputedEntropyMetric(0.1d, false);
        case "discernability-monotonic": return Metric.createDiscernabilityMetric(true);
        case "discernability-nonmonotonic": return Metric.createDiscernabilityMetric(false);
        case "aecs": return Metric.createAECSMetric();
        case "loss": return p.length > 1 ? Metric.createLossMetric(Double.parseDouble(p[1])) : Metric.createLossMetric();
        default: throw new IllegalArgumentException("metric " + spec);
        }
    }

    public static void main(String[] args) throws Exception {
        File csv = new File(args[0]);
        File hierDir = new File(args[1]);
        double suppression = Double.parseDouble(args[2]);
        String metricSpec = args[3];
        String sensitive = args[4];
        int repeat = Integer.parseInt(args[5]);
        String stem = csv.getName().replace(".csv", "");
        List<Double> times = new ArrayList<>();
        String score = null;
        int[] transformation = null;
        for (int rep = 0; rep < repeat; rep++) {
            Data data = Data.create(csv, StandardCharsets.UTF_8, ';');
            boolean needsSensitive = false;
            ARXConfiguration config = ARXConfiguration.create(suppression, metric(metricSpec));
            for (int i = 6; i < args.length; i++) {
                String[] p = args[i].split(":");
                PrivacyCriterion c;
                switch (p[0]) {
                case "k": c = new KAnonymity(Integer.parseInt(p[1])); break;
                case "l-distinct": c = new DistinctLDiversity(p[1], Integer.parseInt(p[2])); needsSensitive = true; break;
                case "l-entropy":
                    c = p.length > 3 && p[3].equals("grassberger")
                        ? new EntropyLDiversity(p[1], Double.parseDouble(p[2]), EntropyLDiversity.EntropyEstimator.GRASSBERGER)
                        : new EntropyLDiversity(p[1], Double.parseDouble(p[2]));
                    needsSensitive = true; break;
                case "l-recursive": c = new RecursiveCLDiversity(p[1], Double.parseDouble(p[2]), Integer.parseInt(p[3])); needsSensitive = true; break;
                case "t-equal": c = new EqualDistanceTCloseness(p[1], Double.parseDouble(p[2])); needsSensitive = true; break;
                case "t-hierarchical":
                    c = new HierarchicalDistanceTCloseness(p[1], Double.parseDouble(p[2]),
                            Hierarchy.create(new File(hierDir, stem + "_hierarchy_" + p[1] + ".csv"), StandardCharsets.UTF_8, ';'));
                    needsSensitive = true; break;
                case "d-presence":
                    c = new DPresence(Double.parseDouble(p[1]), Double.parseDouble(p[2]),
                            DataSubset.create(data, Data.create(new File(hierDir, p[3]), StandardCharsets.UTF_8, ';')));
                    break;
                case "k-map-table":
                    c = new KMap(Integer.parseInt(p[1]), DataSubset.create(data, Data.create(new File(hierDir, p[2]), StandardCharsets.UTF_8, ';')));
                    break;
                case "k-map-estimate":
                    c = new KMap(Integer.parseInt(p[1]), Double.parseDouble(p[2]), ARXPopulationModel.create(Long.parseLong(p[3])),
                            p[4].equals("poisson") ? KMap.CellSizeEstimator.POISSON : KMap.CellSizeEstimator.ZERO_TRUNCATED_POISSON);
                    break;
                case "average-risk":
                    c = p.length > 3 ? new AverageReidentificationRisk(Double.parseDouble(p[1]), Double.parseDouble(p[2]), Double.parseDouble(p[3]))
                                     : new AverageReidentificationRisk(Double.parseDouble(p[1]));
                    break;
                default: throw new IllegalArgumentException("model " + args[i]);
                }
                config.addPrivacyModel(c);
            }
            for (File f : hierDir.listFiles()) {
                String name = f.getName();
                if (!name.startsWith(stem + "_hierarchy_") || !name.endsWith(".csv")) continue;
                String attr = name.substring((stem + "_hierarchy_").length(), name.length() - 4);
                if (attr.equals(sensitive)) {
                    if (needsSensitive) data.getDefinition().setAttributeType(attr, AttributeType.SENSITIVE_ATTRIBUTE);
                } else {
                    data.getDefinition().setAttributeType(attr, Hierarchy.create(new CSVHierarchyInput(f, StandardCharsets.UTF_8, ';').getHierarchy()));
                }
            }
            // ARX_FIX=1,0,2,... restricts the lattice to that one transformation (QIs in column order), to
            // ask ARX whether a given node satisfies the models and what it scores.
            String fix = System.getenv("ARX_FIX");
            if (fix != null && !fix.isEmpty()) {
                String[] lv = fix.split(",");
                int q = 0;
                for (int col = 0; col < data.getHandle().getNumColumns(); col++) {
                    String attr = data.getHandle().getAttributeName(col);
                    if (data.getDefinition().getQuasiIdentifyingAttributes().contains(attr)) {
                        data.getDefinition().setMinimumGeneralization(attr, Integer.parseInt(lv[q]));
                        data.getDefinition().setMaximumGeneralization(attr, Integer.parseInt(lv[q]));
                        q++;
                    }
                }
            }
            config.setPracticalMonotonicity(false);
            long t0 = System.nanoTime();
            ARXResult result = new ARXAnonymizer().anonymize(data, config);
            times.add((System.nanoTime() - t0) / 1e6);
            if (result.getGlobalOptimum() != null) {
                score = result.getGlobalOptimum().getHighestScore().toString();
                transformation = result.getGlobalOptimum().getTransformation();
            }
        }
        StringBuilder sb = new StringBuilder("{\"score\": ");
        sb.append(score == null ? "null" : "\"" + score + "\"");
        sb.append(", \"transformation\": ");
        if (transformation == null) sb.append("null");
        else {
            sb.append("[");
            for (int i = 0; i < transformation.length; i++) sb.append(i > 0 ? ", " : "").append(transformation[i]);
            sb.append("]");
        }
        sb.append(", \"ms\": ").append(times.toString()).append("}");
        System.out.println(sb);
    }
}
