def dense_kernel_for_keras(weight, chw):
    channels, height, width = chw
    out = weight.shape[0]
    per_pixel = weight.reshape(out, channels, height, width)  # PyTorch flattened (c, h, w)
    return per_pixel.transpose(2, 3, 1, 0).reshape(height * width * channels, out)  # Keras flattens (h, w, c)
