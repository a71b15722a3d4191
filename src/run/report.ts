// report.html for a run: written from results.json and metrics.jsonl after every stage, and in
// full (with the models' analysis on the test set) at the end of a pipeline; see src/report.
export { writeReport, buildReport, REPORT_FILE, type BuildReportOptions } from '../report/write';
export { thin } from '../report/curves';
