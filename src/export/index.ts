// Shipping a trained classifier: ONNX (batch norm folded, preprocessing inside), torchvision
// safetensors, and a static web page that runs the ONNX model with onnxruntime-web.
export { OnnxGraph, OPSET, IR_VERSION } from './onnx-graph';
export { classifierToOnnx, describeInput, type OnnxExportOptions, type PixelInput } from './onnx-model';
export { foldedValues } from './fold';
export { torchvisionState, checkTorchvisionCompatible, type TorchvisionExport } from './torchvision';
export { exportRun, defaultStage, onnxBytes, EXPORT_FORMATS, type ExportFormat, type ExportPlan, type ExportResult } from './run-export';
