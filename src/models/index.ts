// simclr-ts/models: encoders (ResNet v1 with SimCLRv2's options).
export * from './resnet';
export * from './heads';
export * from './simclr';
