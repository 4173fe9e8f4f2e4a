"""Known facts of the real Bitcoin blocks in fixtures/bitcoin that the dashboard tests look up."""

SATOSHI = "12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S"    # block 9 coinbase; paid Hal Finney 10 BTC in block 170
HAL = "1Q2TWHE3GMdB6BZKafqwxXtWAWgFt5Jvm3"
BLOCK_170_TX = "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16"
