"""asrk2.data"""
