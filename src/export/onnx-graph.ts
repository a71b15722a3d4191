// A small builder for ONNX graphs: named values, initialisers, nodes with typed attributes,
// serialised with onnx-proto (ONNX's own protobuf schema compiled for protobuf.js).
import { onnx } from 'onnx-proto';

/** ONNX opset this project writes (Conv, Gemm, GridSample 'bicubic', ReduceSum with axes as input). */
export const OPSET = 17;
/** The IR version that goes with opset 17 (ONNX 1.12). */
export const IR_VERSION = 8;

export type Attr =
  | { kind: 'int'; value: number }
  | { kind: 'ints'; value: number[] }
  | { kind: 'float'; value: number }
  | { kind: 'string'; value: string };

export const int = (value: number): Attr => ({ kind: 'int', value });
export const ints = (value: number[]): Attr => ({ kind: 'ints', value });
export const float = (value: number): Attr => ({ kind: 'float', value });
export const str = (value: string): Attr => ({ kind: 'string', value });

export type ElemType = 'float32' | 'uint8' | 'int64';
const ELEM: Record<ElemType, onnx.TensorProto.DataType> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  uint8: onnx.TensorProto.DataType.UINT8,
  int64: onnx.TensorProto.DataType.INT64,
};

/** A dimension: a fixed size, or a name for a size given at run time ('batch'). */
export type Dim = number | string;

function attribute(name: string, a: Attr): onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  switch (a.kind) {
    case 'int':
      return { name, type: T.INT, i: a.value };
    case 'ints':
      return { name, type: T.INTS, ints: a.value };
    case 'float':
      return { name, type: T.FLOAT, f: a.value };
    case 'string':
      return { name, type: T.STRING, s: new TextEncoder().encode(a.value) };
  }
}

function valueInfo(name: string, elem: ElemType, dims: Dim[]): onnx.IValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType: ELEM[elem], shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  };
}

export interface ModelInfo {
  producerVersion: string;
  docString: string;
  /** Key/value pairs in the model's metadata_props (class names, input description, ...). */
  metadata: Record<string, string>;
}

export class OnnxGraph {
  private readonly nodes: onnx.INodeProto[] = [];
  private readonly initializers: onnx.ITensorProto[] = [];
  private readonly inputs: onnx.IValueInfoProto[] = [];
  private readonly outputs: onnx.IValueInfoProto[] = [];
  private readonly used = new Set<string>();
  private counter = 0;

  constructor(readonly name: string) {}

  /** A value name not used yet, from a readable prefix. */
  fresh(prefix: string): string {
    let name = prefix;
    while (this.used.has(name)) name = `${prefix}_${++this.counter}`;
    this.used.add(name);
    return name;
  }

  input(name: string, elem: ElemType, dims: Dim[], doc?: string): string {
    this.used.add(name);
    this.inputs.push({ ...valueInfo(name, elem, dims), ...(doc ? { docString: doc } : {}) });
    return name;
  }

  output(name: string, elem: ElemType, dims: Dim[], doc?: string): void {
    this.outputs.push({ ...valueInfo(name, elem, dims), ...(doc ? { docString: doc } : {}) });
  }

  /** A constant tensor (weights, shapes); float32 or int64. */
  constant(prefix: string, values: Float32Array | BigInt64Array, dims: number[]): string {
    const count = dims.reduce((a, b) => a * b, 1);
    if (values.length !== count) throw new Error(`ONNX initialiser ${prefix}: ${values.length} values for shape [${dims.join(', ')}]`);
    const name = this.fresh(prefix);
    const rawData = new Uint8Array(values.buffer, values.byteOffset, values.byteLength).slice();
    const dataType = values instanceof Float32Array ? ELEM.float32 : ELEM.int64;
    this.initializers.push({ name, dims, dataType, rawData });
    return name;
  }

  int64s(prefix: string, values: number[]): string {
    return this.constant(prefix, BigInt64Array.from(values, (v) => BigInt(v)), [values.length]);
  }

  /** Adds a node; returns its (first) output's name. */
  node(op: string, inputs: string[], attrs: Record<string, Attr> = {}, out?: string): string {
    const output = out ?? this.fresh(op.toLowerCase());
    if (out) this.used.add(out);
    this.nodes.push({
      opType: op,
      name: this.fresh(`node_${op}`),
      input: inputs,
      output: [output],
      attribute: Object.entries(attrs).map(([k, a]) => attribute(k, a)),
    });
    return output;
  }

  /** The model as ONNX protobuf bytes. */
  encode(info: ModelInfo): Uint8Array {
    const model: onnx.IModelProto = {
      irVersion: IR_VERSION,
      opsetImport: [{ domain: '', version: OPSET }],
      producerName: 'simclr-ts',
      producerVersion: info.producerVersion,
      docString: info.docString,
      graph: { name: this.name, node: this.nodes, initializer: this.initializers, input: this.inputs, output: this.outputs },
      metadataProps: Object.entries(info.metadata).map(([key, value]) => ({ key, value })),
    };
    const err = onnx.ModelProto.verify(model);
    if (err) throw new Error(`ONNX model does not fit the schema: ${err}`);
    return onnx.ModelProto.encode(model).finish();
  }

  get nodeCount(): number {
    return this.nodes.length;
  }

  /** Op types used, for tests and messages. */
  opTypes(): Set<string> {
    return new Set(this.nodes.map((n) => n.opType ?? ''));
  }
}
